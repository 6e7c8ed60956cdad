#!/usr/bin/env bash
# scripts/profile_cuda.sh MAMBAC [PRESET...] — where a long prefill spends its time on the
# GPU: Nsight Compute times the first LAUNCHES kernels (default 60: the embedding and the
# first layers) of `mambac bench -p PROMPT -n 0` (default 32768 tokens, one micro-batch),
# one pass per kernel (gpu__time_duration only, clocks left alone), and the kernels are
# summed by name. Random bf16 models of the released shapes under $MODELS (made with
# `mambac init` when absent; a PRESET may also name a model file or folder there, e.g. a
# GGUF); MAMBAC_PRECISION as set (default bf16).
# DECODE=1: decode steps instead: `bench -p 1 -n 64`, the first SKIP kernels (default: the
# untimed round and a few steps, 2000) skipped, then LAUNCHES kernels (default 400: about
# one step of a 48-layer model) one by one (ncu serialises them: graphs are not replayed),
# so the sum is the kernels' own time of a step, to set against bench's time per token.
# BATCH=B (decode): B sequences decoded together (`bench -b B`).
set -euo pipefail
bin=${1:?usage: profile_cuda.sh MAMBAC [PRESET...]}
shift
models=${MODELS:-/tmp/mambac-models}
prompt=${PROMPT:-32768}
mkdir -p "$models"
export MAMBAC_PRECISION=${MAMBAC_PRECISION:-bf16}
for p in ${*:-mamba-1.4b mamba2-1.3b}; do
    [ -e "$models/$p" ] || "$bin" init --preset "$p" --dtype bf16 -o "$models/$p" >/dev/null
    csv=$(mktemp)
    if [ "${DECODE:-0}" = 1 ]; then
        echo "== $p decode, batch ${BATCH:-1} ($MAMBAC_PRECISION), kernels ${SKIP:-2000} .. +${LAUNCHES:-400}"
        ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
            --launch-skip "${SKIP:-2000}" --launch-count "${LAUNCHES:-400}" \
            "$bin" bench -d cuda -m "$models/$p" -p 1 -n 64 -b "${BATCH:-1}" -r 1 >"$csv" 2>/dev/null || true
    else
        echo "== $p prefill $prompt ($MAMBAC_PRECISION), first ${LAUNCHES:-60} kernels"
        ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
            --launch-count "${LAUNCHES:-60}" "$bin" bench -d cuda -m "$models/$p" -p "$prompt" -n 0 -u "$prompt" -r 1 \
            >"$csv" 2>/dev/null || true
    fi
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
