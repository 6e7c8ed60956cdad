#!/usr/bin/env bash
# scripts/bench_cuda_million.sh MAMBAC — a prompt of 2^20 tokens on the GPU, fed through the
# state in pieces of U tokens (the context's memory is set by U, not by the prompt), for the
# mamba2-130m and mamba-1.4b shapes (random bf16 weights, products in bf16). One JSON line per
# run; prefill_tok_s over the whole prompt (the last piece's logits included).
set -uo pipefail
bin=${1:?usage: bench_cuda_million.sh MAMBAC}
models=${MODELS:-/tmp/mambac-models}
mkdir -p "$models"
export MAMBAC_PRECISION=${MAMBAC_PRECISION:-bf16}
for m in ${PRESETS:-mamba2-130m mamba-1.4b}; do
    [ -e "$models/$m" ] || "$bin" init --preset "$m" --dtype bf16 -o "$models/$m" >/dev/null
    for u in ${PIECES:-32768 131072}; do
        "$bin" bench -d cuda -m "$models/$m" --json -p 1048576 -n 0 -u "$u" -r 1 | sed "s/^{/{\"case\": \"1M tokens, pieces of $u\", /"
    done
done
