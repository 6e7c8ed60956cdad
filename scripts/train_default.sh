#!/usr/bin/env bash
# scripts/train_default.sh MAMBAC BOOKS RUN [SECONDS] — trains the embedded default model
# (models/default) on the Gutenberg books (../shared/data/gutenberg/books) on one GPU, in
# resumable segments: the first call tokenizes the books into RUN.tok (bytes, their hard
# line wrapping undone by prepare-data --unwrap; 5 % of the books held out whole) and
# starts RUN, each later call resumes it; every call stops and saves after SECONDS
# (default 540) or when the schedule ends. The shape and the schedule
# are fixed here so that the run is reproducible; STEPS overrides the schedule's length.
# Then scripts/shard_model.py --bf16-matrices RUN models/default writes the files that ship
# (7.5 M parameters: 15 MB in bfloat16, one file under the 16 MiB a file may have).
set -euo pipefail
bin=${1:?usage: train_default.sh MAMBAC BOOKS RUN [SECONDS]}
books=${2:?usage: train_default.sh MAMBAC BOOKS RUN [SECONDS]}
run=${3:?usage: train_default.sh MAMBAC BOOKS RUN [SECONDS]}
secs=${4:-540}
steps=${STEPS:-6000}
if [ -e "$run/train_state.json" ]; then
    exec "$bin" train --resume "$run" --time-limit "$secs" # on the device the run trained on
fi
dev=${DEVICE:-cuda}
prec=(--precision bf16)
[ "$dev" = cpu ] && prec=()
[ -e "$run.tok" ] || "$bin" prepare-data --data "$books" --unwrap --val-frac 0.05 --seed 1337 -o "$run.tok"
exec "$bin" train --device "$dev" "${prec[@]}" --data "$run.tok" -o "$run" \
    --arch mamba --d-model 320 --layers 11 --d-state 16 --expand 2 \
    --batch 16 --seq 2048 --steps "$steps" --warmup 400 --lr 2e-3 --min-lr 1e-4 --wd 0.1 \
    --eval-every 250 --eval-windows 64 --save-every 2000 --seed 1337 --time-limit "$secs"
