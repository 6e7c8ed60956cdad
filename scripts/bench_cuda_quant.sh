#!/usr/bin/env bash
# scripts/bench_cuda_quant.sh MAMBAC — batch-1 decode of q8_0 / q4_0 GGUF files kept quantized
# on the GPU (src/cuda/gemv.cu, dequant.cu), beside the bf16 file of the same model, and long prompts of
# the quantized files (dequantized tiles for the products). Random weights of the released
# shapes; one JSON line per run (mambac bench --json) tagged with the case. The floor of a
# decode step is weight_bytes over the copy rate (bench_cuda_kernels prints it).
set -uo pipefail
bin=${1:?usage: bench_cuda_quant.sh MAMBAC}
models=${MODELS:-/tmp/mambac-models}
mkdir -p "$models"
run() { # case, file, bench args...
    local c=$1 m=$2; shift 2
    "$bin" bench -d cuda -m "$m" --json "$@" | sed "s/^{/{\"case\": \"$c\", /"
}
for m in ${PRESETS:-mamba-1.4b mamba2-1.3b mamba-130m}; do
    [ -e "$models/$m" ] || "$bin" init --preset "$m" --dtype bf16 -o "$models/$m" >/dev/null
    for t in q8_0 q4_0; do
        [ -e "$models/$m-$t.gguf" ] || "$bin" quantize -m "$models/$m" -o "$models/$m-$t.gguf" --type "$t" >/dev/null
        for prec in f32 bf16; do
            MAMBAC_PRECISION=$prec run "$t $prec b1 p16" "$models/$m-$t.gguf" -p 16 -n 256 -b 1 -r 2
        done
        MAMBAC_PRECISION=bf16 run "$t bf16 prefill 8192" "$models/$m-$t.gguf" -p 8192 -n 0 -u 8192 -r 1
    done
    MAMBAC_PRECISION=bf16 run "bf16 b1 p16" "$models/$m" -p 16 -n 256 -b 1 -r 2
done
