#!/usr/bin/env python3
"""Device, dev-only: mamba_ssm's training throughput at any model and batch of the peers'
harness (../shared/gpu-peers/bin/bench.py, carried as .peers/bin; its `train` section runs
only the 130m shapes at batch 8). Same recipe: float32 master weights, bf16 autocast,
AdamW (foreach), sequence 2048.

    PYTHONPATH=/tmp/site python3 scripts/bench_peer_train.py mamba-1.4b:4 mamba2-1.3b:4

Run after .peers/bin/install-wheels.sh has installed the wheels; prints one JSON line per
model and writes $OUT/gpu-peers.json.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get("PEERS", ".peers"), "bin"))
import bench  # noqa: E402  (the harness: its models, its training step)

for spec in sys.argv[1:]:
    name, _, batch = spec.partition(":")
    bench.guard(f"train:{name}", lambda: bench.training(name, batch=int(batch or 8), warm=3, steps=8))
    print("PEER_TRAIN " + json.dumps({name: bench.R["training"].get(name), "error": bench.R["errors"].get(f"train:{name}")}),
          flush=True)
