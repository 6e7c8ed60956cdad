#!/usr/bin/env python3
"""Dev benchmark: mambac vs llama.cpp on the same GGUF files, same threads.

Usage: python3 scripts/bench_vs_llamacpp.py LLAMA_BENCH MAMBAC THREADS [--rounds N] FILE.gguf...
For each file, N rounds (default 3) of `llama-bench -m F -p 512 -n 128 -t T -r 3 -o json`
then `mambac bench -m F -p 512 -n 128 -t T -r 3 --json`, alternating, one tool at a
time; each side's best round is reported (the machine is shared: the best of several
interleaved rounds is the least disturbed one). Prints a markdown table of prefill and
decode tokens/s with the ratios."""
import json, subprocess, sys

args = sys.argv[1:]
rounds = 3
if "--rounds" in args:
    i = args.index("--rounds")
    rounds = int(args[i + 1])
    del args[i:i + 2]
llama, mambac, threads, files = args[0], args[1], args[2], args[3:]


def llama_run(f):
    out = subprocess.run([llama, "-m", f, "-p", "512", "-n", "128", "-t", threads, "-r", "3", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    return (next(r["avg_ts"] for r in rows if r["n_prompt"] > 0), next(r["avg_ts"] for r in rows if r["n_gen"] > 0))


def mambac_run(f):
    out = subprocess.run([mambac, "bench", "-m", f, "-p", "512", "-n", "128", "-t", threads, "-r", "3", "--json"],
                         check=True, capture_output=True, text=True).stdout
    runs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return (sum(r["prefill_tok_s"] for r in runs) / len(runs), sum(r["decode_tok_s"] for r in runs) / len(runs))


print(f"| file | llama.cpp pp512 | mambac pp512 | × | llama.cpp tg128 | mambac tg128 | × |")
print("|---|---|---|---|---|---|---|")
for f in files:
    lp = lg = mp = mg = 0.0
    for _ in range(rounds):
        a, b = llama_run(f)
        lp, lg = max(lp, a), max(lg, b)
        a, b = mambac_run(f)
        mp, mg = max(mp, a), max(mg, b)
    name = f.rsplit("/", 1)[-1]
    print(f"| {name} | {lp:.1f} | {mp:.1f} | {mp / lp:.2f} | {lg:.1f} | {mg:.1f} | {mg / lg:.2f} |", flush=True)
