#!/usr/bin/env bash
# scripts/test_cuda.sh BUILD_DIR — the GPU tests, on a machine with an NVIDIA GPU:
#   1. test_cuda: the CUDA backend against the CPU backend (shapes, pieces, batches,
#      states moved between backends, bf16 products);
#   1b. test_cuda_train: training on the GPU against the CPU trainer and the fixtures;
#   2. test_parity and test_batch with MAMBAC_TEST_BACKEND=cuda: the float64 fixtures
#      (logits, greedy continuations, every prompt split, resumed states) and batched =
#      sequential, on the GPU (f32, then bf16 products for test_batch);
#   3. compute-sanitizer memcheck and racecheck over test_batch, the training kernels' checks
#      (test_cuda_train kernels) and the kernel workbench
#      (bench_cuda_kernels at 300 tokens) on the GPU, when present.
# Prints one "N passed, N failed" line at the end; exit status 1 if anything failed.
set -uo pipefail
build=${1:-build}
passed=0 failed=0
run() { # name, command...
    local name=$1; shift
    printf '\n==== %s\n' "$name"
    local log; log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local p f
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | tail -1)
    if grep -q "ERROR SUMMARY: [1-9]" "$log"; then rc=1; fi
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then failed=$((failed + 1)); echo "$name: exit status $rc"; fi
    rm -f "$log"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
run test_cuda "$build/tests/test_cuda"
run test_cuda_train "$build/tests/test_cuda_train"
MAMBAC_TEST_BACKEND=cuda run "test_parity (cuda)" "$build/tests/test_parity"
MAMBAC_TEST_BACKEND=cuda run "test_batch (cuda)" "$build/tests/test_batch"
MAMBAC_TEST_BACKEND=cuda MAMBAC_TEST_PRECISION=bf16 run "test_batch (cuda, bf16 products)" "$build/tests/test_batch"
if command -v compute-sanitizer >/dev/null; then
    MAMBAC_TEST_BACKEND=cuda run "memcheck test_batch" compute-sanitizer --tool memcheck --leak-check full "$build/tests/test_batch"
    MAMBAC_TEST_BACKEND=cuda run "racecheck test_batch" compute-sanitizer --tool racecheck "$build/tests/test_batch"
    # the training kernels' own checks (the SSD's tensor-core and recurrent forms)
    run "memcheck test_cuda_train kernels" compute-sanitizer --tool memcheck "$build/tests/test_cuda_train" kernels
    run "racecheck test_cuda_train kernels" compute-sanitizer --tool racecheck "$build/tests/test_cuda_train" kernels
    # the prefill kernels over 300 tokens (chunks, a partial last one), decode steps of 1
    # and 128 sequences, the decode products, each checked against the CPU as it runs
    if [ -x "$build/bench/bench_cuda_kernels" ]; then
        run "memcheck kernels" compute-sanitizer --tool memcheck "$build/bench/bench_cuda_kernels" 300
        run "racecheck kernels" compute-sanitizer --tool racecheck "$build/bench/bench_cuda_kernels" 300
    fi
else
    echo "compute-sanitizer not found: memcheck / racecheck not run"
fi
echo
echo "cuda: $passed passed, $failed failed"
[ "$failed" = 0 ]
