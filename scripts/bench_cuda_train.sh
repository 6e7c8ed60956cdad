#!/usr/bin/env bash
# scripts/bench_cuda_train.sh MAMBAC [MODELS...] — training throughput on the GPU:
# `mambac train --device cuda` on random models of the released shapes (float32 weights),
# batch 8 x 2048 tokens (the peers' harness's training case), bytes of a text as tokens.
# Prints one line per model: tokens/s (median of the logged steps after the first two)
# and the loss of the first and last step. BATCH, SEQ, STEPS override the case; PRECISION
# (f32, tf32, bf16) the products' precision; MAMBAC_TRAIN_PROFILE=1 adds the time per
# kind of op.
set -euo pipefail
bin=${1:?usage: bench_cuda_train.sh MAMBAC [models...]}
shift
models=${*:-mamba-130m mamba2-130m}
B=${BATCH:-8} L=${SEQ:-2048} S=${STEPS:-12}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# text: the repository's docs, repeated to ~8 MB
for i in $(seq 1 40); do cat "$(dirname "$0")"/../docs/*.md "$(dirname "$0")"/../README.md; done > "$dir/text.txt"
for m in $models; do
    "$bin" init --preset "$m" -o "$dir/$m" >/dev/null
    "$bin" train --device cuda --init-from "$dir/$m" --data "$dir/text.txt" -o "$dir/run-$m" --batch "$B" --seq "$L" \
        --steps "$S" --warmup 2 ${PRECISION:+--precision $PRECISION} --eval-every 100000 --val-frac 0.01 --lr 1e-3 2> "$dir/err-$m.txt" || { cat "$dir/err-$m.txt"; continue; }
    python3 - "$dir/run-$m/log.csv" "$m" "$B" "$L" "${PRECISION:-f32}" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
toks = [float(r["tok_per_s"]) for r in rows[2:]] or [float(rows[-1]["tok_per_s"])]
print(f"{sys.argv[2]} train {sys.argv[5]} b{sys.argv[3]} x {sys.argv[4]}: {statistics.median(toks):,.0f} tok/s "
      f"(steps {len(rows)}, loss {float(rows[0]['train_loss']):.4f} -> {float(rows[-1]['train_loss']):.4f})")
PY
    if [ -n "${MAMBAC_TRAIN_PROFILE:-}" ]; then sed -n '/^GPU training profile/,/total/p' "$dir/err-$m.txt"; fi
    rm -rf "$dir/run-$m" "$dir/$m"
done
