#!/usr/bin/env python3
"""Plots training curves from mambac's log.csv files (dev tool; needs matplotlib).

Usage: python3 scripts/plot_training.py OUT.png LABEL=DIR/log.csv [LABEL=DIR/log.csv ...]
           [--title T] [--xlabel X] [--ymax Y] [--shakespeare]
Train loss (thin) and validation loss (markers) against wall-clock minutes; --shakespeare
draws nanoGPT's Tiny Shakespeare baselines (the defaults fit docs/training-curve.png)."""
import argparse, csv
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("logs", nargs="+")
ap.add_argument("--title", default="mambac train on Tiny Shakespeare (byte-level); whole-split val: 1.529 (d128x4), 1.489 (d256x6)")
ap.add_argument("--xlabel", default="minutes (2-core AMD EPYC)")
ap.add_argument("--ymin", type=float, default=1.0)
ap.add_argument("--ymax", type=float, default=3.0)
ap.add_argument("--shakespeare", action="store_true")
args = ap.parse_args()
fig, ax = plt.subplots(figsize=(8, 4.5))
for arg in args.logs:
    label, path = arg.split("=", 1)
    rows = list(csv.DictReader(open(path)))
    t = [float(r["elapsed_s"]) / 60 for r in rows]
    ax.plot(t, [float(r["train_loss"]) for r in rows], lw=0.6, alpha=0.5, label=f"{label} train")
    v = [(float(r["elapsed_s"]) / 60, float(r["val_loss"])) for r in rows if r["val_loss"]]
    ax.plot([a for a, _ in v], [b for _, b in v], "o-", ms=3, label=f"{label} validation (in-run windows)")
if args.shakespeare:
    ax.axhline(1.88, color="gray", ls="--", lw=0.8)
    ax.text(0.2, 1.9, "1.88 (nanoGPT CPU baseline)", color="gray", fontsize=8)
    ax.axhline(1.4697, color="gray", ls=":", lw=0.8)
    ax.text(0.2, 1.48, "1.47 (nanoGPT GPU baseline)", color="gray", fontsize=8)
ax.set_xlabel(args.xlabel)
ax.set_ylabel("loss (nats / byte)")
ax.set_ylim(args.ymin, args.ymax)
ax.set_title(args.title, fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(args.out, dpi=110)
print("wrote", args.out)
