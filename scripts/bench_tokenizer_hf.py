#!/usr/bin/env python3
"""Dev-only: HF tokenizers' encode throughput on one thread, for docs/PERFORMANCE.md.
Usage: RAYON_NUM_THREADS=1 python3 scripts/bench_tokenizer_hf.py TOKENIZER.json FILE [REPEATS]
Encodes the whole file as one string (like bench/bench_tokenize) and, for reference, line by
line with encode_batch (one thread)."""
import os, sys, time
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8").read()
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
n = len(text.encode())
best = 0
for _ in range(reps):
    t = time.perf_counter(); ids = tok.encode(text).ids; dt = time.perf_counter() - t
    best = max(best, n / 1e6 / dt)
    print(f"HF encode (one string): {n/1e6:.2f} MB in {dt:.3f} s = {n/1e6/dt:.2f} MB/s, {len(ids)} tokens")
lines = text.splitlines(keepends=True)
t = time.perf_counter(); tok.encode_batch(lines); dt = time.perf_counter() - t
print(f"HF encode_batch (per line, 1 thread): {n/1e6/dt:.2f} MB/s")
print(f"best: {best:.2f} MB/s")
