#!/usr/bin/env bash
# scripts/profile_cuda.sh MAMBAC [PRESET...] — where a long prefill spends its time on the
# GPU: Nsight Compute times the first LAUNCHES kernels (default 60: the embedding and the
# first layers) of `mambac bench -p PROMPT -n 0` (default 32768 tokens, one micro-batch),
# one pass per kernel (gpu__time_duration only, clocks left alone), and the kernels are
# summed by name. Random bf16 models of the released shapes under $MODELS (made with
# `mambac init` when absent); MAMBAC_PRECISION as set (default bf16).
set -euo pipefail
bin=${1:?usage: profile_cuda.sh MAMBAC [PRESET...]}
shift
models=${MODELS:-/tmp/mambac-models}
prompt=${PROMPT:-32768}
mkdir -p "$models"
export MAMBAC_PRECISION=${MAMBAC_PRECISION:-bf16}
for p in ${*:-mamba-1.4b mamba2-1.3b}; do
    [ -e "$models/$p" ] || "$bin" init --preset "$p" --dtype bf16 -o "$models/$p" >/dev/null
    echo "== $p prefill $prompt ($MAMBAC_PRECISION), first ${LAUNCHES:-60} kernels"
    csv=$(mktemp)
    ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
        --launch-count "${LAUNCHES:-60}" "$bin" bench -d cuda -m "$models/$p" -p "$prompt" -n 0 -u "$prompt" -r 1 \
        >"$csv" 2>/dev/null || true
    python3 - "$csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; k = head.index("Kernel Name"); v = head.index("Metric Value")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows[1:]:
    name = r[k].split("(")[0].split("<")[0][:48]
    tot[name] += float(r[v].replace(",", "")) / 1e3; cnt[name] += 1
all_us = sum(tot.values())
for name, us in sorted(tot.items(), key=lambda x: -x[1]):
    print(f"{name:50s} {cnt[name]:4d} x {us / cnt[name]:10.1f} us = {us:10.1f} us ({100 * us / all_us:4.1f}%)")
print(f"{'total':50s} {sum(cnt.values()):4d}      {all_us:10.1f} us")
PY
    rm -f "$csv"
done
