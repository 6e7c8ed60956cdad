#!/usr/bin/env bash
# scripts/mqar_sweep.sh MAMBAC OUT.csv — MQAR accuracy against model width, the grid of the
# Mamba-2 paper's recall figure as we read it: Mamba-1 (N 16) and Mamba-2 (N 16, 64, 256),
# d_model 32 / 64 / 128 / 256, 2 layers, vocabulary 8192, sequence lengths 256 / 512 / 1024
# with a quarter of each sequence in key-value pairs (the task's hardest setting). One
# `mambac mqar` run per cell and learning rate (LR: a list, default "1e-2 3e-3"; Zoology
# too keeps each cell's best learning rate), on the GPU (-d cuda) unless DEVICE says
# otherwise; STEPS, BATCH, SEQS, WIDTHS and EXAMPLES override. Appends one CSV row per run;
# scripts/plot_mqar.py plots each cell's best.
set -euo pipefail
bin=${1:?usage: mqar_sweep.sh MAMBAC OUT.csv}
out=${2:?usage: mqar_sweep.sh MAMBAC OUT.csv}
device=${DEVICE:-cuda} steps=${STEPS:-4000} batch=${BATCH:-64} lrs=${LR:-1e-2 3e-3} examples=${EXAMPLES:-1000}
seqs=${SEQS:-256 512 1024} widths=${WIDTHS:-32 64 128 256}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
[ -s "$out" ] || echo "model,d_state,d_model,seq,kv,steps,lr,accuracy,final_loss,train_seconds" > "$out"
for L in $seqs; do
    kv=$((L / 4))
    for cfg in "mamba 16" "mamba2 16" "mamba2 64" "mamba2 256"; do
        set -- $cfg
        for D in $widths; do
          for lr in $lrs; do
            run="$dir/$1-$2-$D-$L-$lr"
            extra=""
            [ "$1" = mamba2 ] && extra="--headdim $((D * 2 / 8 < 64 ? D * 2 / 8 : 64)) --chunk 64"
            "$bin" mqar -d "$device" -o "$run" --arch "$1" --d-state "$2" --d-model "$D" --layers 2 --vocab 8192 --seq "$L" \
                --kv "$kv" --steps "$steps" --batch "$batch" --lr "$lr" --eval-examples "$examples" $extra ${PRECISION:+--precision $PRECISION} \
                > "$run.out" 2> "$run.err" || { echo "failed: $cfg d$D L$L: $(tail -1 "$run.err")"; continue; }
            python3 - "$run/mqar.json" "$out" "$1" "$2" "$lr" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as f:
    f.write(f"{sys.argv[3]},{sys.argv[4]},{j['d_model']},{j['seq_len']},{j['num_kv_pairs']},{j['steps']},{sys.argv[5]},"
            f"{j['accuracy']:.4f},{j['final_loss']:.4f},{j['train_seconds']:.1f}\n")
PY
            tail -1 "$run.out"
            rm -rf "$run"
          done
        done
    done
done
