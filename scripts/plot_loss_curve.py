#!/usr/bin/env python3
"""Plots `mambac eval --task perplexity --curve` CSV files: mean loss (nats a token) against
the tokens a prediction had seen, on a log axis (dev tool; needs matplotlib).

Usage: python3 scripts/plot_loss_curve.py OUT.png LABEL=curve.csv [LABEL=curve.csv ...]"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

out = sys.argv[1]
fig, ax = plt.subplots(figsize=(8, 4.5))
for arg in sys.argv[2:]:
    label, path = arg.split("=", 1)
    rows = [r for r in csv.DictReader(open(path)) if int(r["tokens"]) >= 8]  # buckets too small to mean much left out
    x = [(int(r["positions_from"]) * int(r["positions_to"])) ** 0.5 for r in rows]
    ax.plot(x, [float(r["mean_nats"]) for r in rows], "o-", ms=3, label=label)
ax.set_xscale("log", base=2)
ax.set_xlabel("tokens seen (bucket [2^k, 2^(k+1)), geometric middle)")
ax.set_ylabel("mean loss, nats a token")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(out, dpi=110)
