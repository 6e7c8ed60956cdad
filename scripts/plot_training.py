#!/usr/bin/env python3
"""Plots training curves from mambac's log.csv files (dev tool; needs matplotlib).

Usage: python3 scripts/plot_training.py OUT.png LABEL=DIR/log.csv [LABEL=DIR/log.csv ...]
Train loss (thin) and validation loss (markers) against wall-clock minutes."""
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

out = sys.argv[1]
fig, ax = plt.subplots(figsize=(8, 4.5))
for arg in sys.argv[2:]:
    label, path = arg.split("=", 1)
    rows = list(csv.DictReader(open(path)))
    t = [float(r["elapsed_s"]) / 60 for r in rows]
    ax.plot(t, [float(r["train_loss"]) for r in rows], lw=0.6, alpha=0.5, label=f"{label} train")
    v = [(float(r["elapsed_s"]) / 60, float(r["val_loss"])) for r in rows if r["val_loss"]]
    ax.plot([a for a, _ in v], [b for _, b in v], "o-", ms=3, label=f"{label} validation (in-run windows)")
ax.axhline(1.88, color="gray", ls="--", lw=0.8)
ax.text(0.2, 1.9, "1.88 (nanoGPT CPU baseline)", color="gray", fontsize=8)
ax.axhline(1.4697, color="gray", ls=":", lw=0.8)
ax.text(0.2, 1.48, "1.47 (nanoGPT GPU baseline)", color="gray", fontsize=8)
ax.set_xlabel("minutes (2-core AMD EPYC)")
ax.set_ylabel("loss (nats / byte)")
ax.set_ylim(1.0, 3.0)
ax.set_title("mambac train on Tiny Shakespeare (byte-level); whole-split val: 1.529 (d128x4), 1.489 (d256x6)", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out, dpi=110)
print("wrote", out)
