#!/usr/bin/env bash
# scripts/bench_cuda.sh MAMBAC [PRESET...] — GPU speed of mambac on random models of released
# shapes: prefill and decode at several batch sizes, one JSON line per run (mambac bench
# --json), on the GPU the machine has. Models are made with `mambac init` under $MODELS
# (default /tmp/mambac-models). BATCHES (default "1 32 128"), DTYPE (default bf16),
# PRECISIONS (default "f32 bf16").
set -euo pipefail
bin=${1:?usage: bench_cuda.sh MAMBAC [PRESET...]}
shift
presets=${*:-mamba-130m mamba2-130m}
models=${MODELS:-/tmp/mambac-models}
mkdir -p "$models"
for p in $presets; do
    [ -e "$models/$p" ] || "$bin" init --preset "$p" --dtype "${DTYPE:-bf16}" -o "$models/$p" >/dev/null
    for prec in ${PRECISIONS:-f32 bf16}; do
        for b in ${BATCHES:-1 32 128}; do
            MAMBAC_PRECISION=$prec "$bin" bench -d cuda -m "$models/$p" -p "${PROMPT:-512}" -n "${NGEN:-128}" -b "$b" -u "${UBATCH:-4096}" -r "${REPEATS:-2}" --json |
                sed "s/^{/{\"precision\": \"$prec\", /"
        done
    done
done
