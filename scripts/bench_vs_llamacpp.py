#!/usr/bin/env python3
"""Dev benchmark: mambac vs llama.cpp on the same GGUF files, same threads.

Usage: python3 scripts/bench_vs_llamacpp.py LLAMA_BENCH MAMBAC THREADS FILE.gguf...
Runs `llama-bench -m F -p 512 -n 128 -t T -r 3 -o json` and `mambac bench -m F -p 512
-n 128 -t T -r 3 --json` on each file (alternating, one at a time) and prints a
markdown table of prefill and decode tokens/s with the ratios."""
import json, subprocess, sys

llama, mambac, threads = sys.argv[1], sys.argv[2], sys.argv[3]
print("| file | llama.cpp pp512 | mambac pp512 | × | llama.cpp tg128 | mambac tg128 | × |")
print("|---|---|---|---|---|---|---|")
for f in sys.argv[4:]:
    lj = json.loads(subprocess.run([llama, "-m", f, "-p", "512", "-n", "128", "-t", threads, "-r", "3", "-o", "json"],
                                   check=True, capture_output=True, text=True).stdout)
    lp = next(r["avg_ts"] for r in lj if r["n_prompt"] > 0)
    lg = next(r["avg_ts"] for r in lj if r["n_gen"] > 0)
    out = subprocess.run([mambac, "bench", "-m", f, "-p", "512", "-n", "128", "-t", threads, "-r", "3", "--json"],
                         check=True, capture_output=True, text=True).stdout
    runs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    mp = sum(r["prefill_tok_s"] for r in runs) / len(runs)
    mg = sum(r["decode_tok_s"] for r in runs) / len(runs)
    name = f.rsplit("/", 1)[-1]
    print(f"| {name} | {lp:.1f} | {mp:.1f} | {mp / lp:.2f} | {lg:.1f} | {mg:.1f} | {mg / lg:.2f} |", flush=True)
