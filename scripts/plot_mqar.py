#!/usr/bin/env python3
"""scripts/plot_mqar.py SWEEP.csv OUT.png — MQAR accuracy against model width (the CSV of
scripts/mqar_sweep.sh): one panel per sequence length, one line per model and state size,
as the Mamba-2 paper's recall figure lays it out. Dev tool (matplotlib)."""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, dst: str) -> None:
    best = {}  # each cell's best run over the learning rates swept
    for r in csv.DictReader(open(src)):
        k = (r["model"], r["d_state"], r["d_model"], r["seq"])
        if k not in best or float(r["accuracy"]) > float(best[k]["accuracy"]):
            best[k] = r
    rows = list(best.values())
    seqs = sorted({int(r["seq"]) for r in rows})
    fig, axes = plt.subplots(1, len(seqs), figsize=(4.2 * len(seqs), 3.6), sharey=True, squeeze=False)
    for ax, L in zip(axes[0], seqs):
        lines = defaultdict(list)
        for r in rows:
            if int(r["seq"]) == L:
                label = ("Mamba" if r["model"] == "mamba" else "Mamba-2") + f" N={r['d_state']}"
                lines[label].append((int(r["d_model"]), float(r["accuracy"])))
        for label, pts in sorted(lines.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_title(f"sequence length {L} (KV pairs {L // 4})")
        ax.set_xlabel("model dimension")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
