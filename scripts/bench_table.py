#!/usr/bin/env python3
"""Dev benchmark: the CPU inference table of docs/PERFORMANCE.md.

Usage: python3 scripts/bench_table.py BUILD_DIR [--rounds N] FILE...
For each round (default 2) and file: `mambac bench -m F -p 512 -n 128 -r 3 --json` with
1 and 2 threads on the default kernel set, and 2 threads with MAMBAC_ISA=avx512; every
cell is the best over rounds and repeats (the machine is shared: the best run is the
least disturbed one). bench_roofline runs before and after each round; its best is
printed too. Prints a markdown table (tokens/s)."""
import json, os, subprocess, sys

args = sys.argv[1:]
rounds = 2
if "--rounds" in args:
    i = args.index("--rounds")
    rounds = int(args[i + 1])
    del args[i:i + 2]
build, files = args[0], args[1:]
mambac, roofline = os.path.join(build, "mambac"), os.path.join(build, "bench", "bench_roofline")
runs = [("best", 1), ("best", 2), ("avx512", 2)]
best = {}  # (file, run) -> [prefill, decode]
weights, probe = {}, {}


def probe_once():
    out = subprocess.run([roofline, "2", "--json"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        r = json.loads(line)
        p = probe.setdefault(r["threads"], [0.0, 0.0, 0.0])
        p[0] = max(p[0], r["peak_fp32_gflops"])
        p[1] = max(p[1], r.get("peak_amx_bf16_gflops", 0.0))
        p[2] = max(p[2], r["read_gb_s"])


for _ in range(rounds):
    probe_once()
    for f in files:
        for isa, t in runs:
            env = dict(os.environ)
            if isa != "best":
                env["MAMBAC_ISA"] = isa
            out = subprocess.run([mambac, "bench", "-m", f, "-p", "512", "-n", "128", "-r", "3", "-t", str(t), "--json"],
                                 check=True, capture_output=True, text=True, env=env).stdout
            for line in out.splitlines():
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                cell = best.setdefault((f, (isa, t)), [0.0, 0.0])
                cell[0] = max(cell[0], r["prefill_tok_s"])
                cell[1] = max(cell[1], r["decode_tok_s"])
                weights[f] = r["weight_bytes"]
probe_once()

for t, (fma, amx, bw) in sorted(probe.items()):
    print(f"probe, {t} threads (best): FMA {fma:.1f} GFLOP/s, AMX bf16 {amx:.0f} GFLOP/s, read {bw:.1f} GB/s")
print()
print("| model | weights | 1 thread pp512 | 1 thread tg128 | 2 threads pp512 | 2 threads tg128 "
      "| avx512, 2 threads pp512 | avx512, 2 threads tg128 |")
print("|---|---|---|---|---|---|---|---|")
for f in files:
    cells = " | ".join(f"{best[(f, r)][0]:.0f} | {best[(f, r)][1]:.1f}" for r in runs)
    print(f"| {os.path.basename(f)} | {weights[f] / 2**20:.1f} MiB | {cells} |")
