#!/usr/bin/env bash
# scripts/profile_cuda_train.sh MAMBAC [PRESET...] — where a GPU training step spends its
# time, kernel by kernel: Nsight Compute times every kernel of step STEP (default 2) and its
# AdamW update of `mambac train --device cuda` (batch 8 x 2048, bytes as tokens; the
# trainer opens the profiler's range for that step: MAMBAC_TRAIN_NCU_STEP), one pass per
# kernel (gpu__time_duration only, clocks left alone), summed by name (µs a step).
# DETAIL="name ..." adds Nsight Compute's speed-of-light, occupancy and warp-state sections
# for the first launch in that step of each kernel named (a prefix of its name).
# PRECISION (default bf16), BATCH, SEQ as in bench_cuda_train.sh.
set -euo pipefail
bin=${1:?usage: profile_cuda_train.sh MAMBAC [presets...]}
shift
B=${BATCH:-8} L=${SEQ:-2048} step=${STEP:-2}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for i in $(seq 1 8); do cat "$(dirname "$0")"/../docs/*.md "$(dirname "$0")"/../README.md; done > "$dir/text.txt"
export MAMBAC_TRAIN_NCU_STEP=$step
for m in ${*:-mamba-130m mamba2-130m}; do
    "$bin" init --preset "$m" -o "$dir/$m" >/dev/null
    run=("$bin" train --device cuda --init-from "$dir/$m" --data "$dir/text.txt" -o "$dir/run-$m" --batch "$B" --seq "$L"
         --steps "$step" --warmup 1 --precision "${PRECISION:-bf16}" --eval-every 100000 --val-frac 0.01 --lr 1e-3)
    echo "== $m train b$B x $L (${PRECISION:-bf16}), step $step, kernel by kernel"
    ncu --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
        "${run[@]}" > "$dir/k.csv" 2> "$dir/err.txt" || { tail -5 "$dir/err.txt"; }
    rm -rf "$dir/run-$m"
    python3 - "$dir/k.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    sys.exit("no kernels profiled")
head = rows[0]; k = head.index("Kernel Name"); v = head.index("Metric Value")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows[1:]:
    name = r[k].split("(")[0][:72]
    tot[name] += float(r[v].replace(",", "")) / 1e3; cnt[name] += 1
all_us = sum(tot.values())
for name, us in sorted(tot.items(), key=lambda x: -x[1]):
    print(f"{name:72s} {cnt[name]:5d} x {us / cnt[name]:9.1f} us = {us:9.1f} us ({100 * us / all_us:4.1f}%)")
print(f"{'total':72s} {sum(cnt.values()):5d}     {all_us:10.1f} us")
PY
    for kern in ${DETAIL:-}; do
        echo "== $m: $kern, its first launch in step $step"
        ncu --profile-from-start off --clock-control none --kernel-name "regex:${kern}" --launch-count 1 \
            --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section SchedulerStats \
            --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis "${run[@]}" 2>&1 | grep -v "^==PROF==" |
            sed -n '/^  [a-zA-Z_].*(/,$p' | grep -v -E '^ *-+( +-+)* *$' || true
        rm -rf "$dir/run-$m"
    done
    rm -rf "$dir/$m"
done
