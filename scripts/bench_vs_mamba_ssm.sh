#!/usr/bin/env bash
# scripts/bench_vs_mamba_ssm.sh MAMBAC — mambac's side of the GPU comparison with mamba_ssm
# (shared/gpu-peers' bench.py, run in the same device call just before): random bf16 models of
# the released shapes, products in bf16 (MAMBAC_PRECISION=bf16), the harness's generation cases
# (batch 1: prompt 16 + decode; batch 32 and 128: prompt 2048 + 128 decoded) and one prefill of
# 2k / 32k tokens. One JSON line per run (mambac bench --json) tagged with the case.
set -uo pipefail
bin=${1:?usage: bench_vs_mamba_ssm.sh MAMBAC}
models=${MODELS:-/tmp/mambac-models}
mkdir -p "$models"
export MAMBAC_PRECISION=${MAMBAC_PRECISION:-bf16}
run() { # case, model, bench args...
    local c=$1 m=$2; shift 2
    "$bin" bench -d cuda -m "$models/$m" --json "$@" | sed "s/^{/{\"case\": \"$c\", /"
}
for m in ${PRESETS:-mamba-130m mamba2-130m mamba-1.4b mamba2-1.3b}; do
    [ -e "$models/$m" ] || "$bin" init --preset "$m" --dtype bf16 -o "$models/$m" >/dev/null
    run "b1 p16" "$m" -p 16 -n 256 -b 1 -r 2
    run "b32 p2048" "$m" -p 2048 -n 128 -b 32 -u 8192 -r 1
    run "b128 p2048" "$m" -p 2048 -n 128 -b 128 -u 8192 -r 1
    run "prefill 2048" "$m" -p 2048 -n 0 -u 2048 -r 2
    run "prefill 32768" "$m" -p 32768 -n 0 -u 32768 -r 1
done
