#!/usr/bin/env bash
# scripts/check.sh — the project's test command (README; .ci/run calls it).
#   1. release build, warnings as errors, all ctest tests
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build, all ctest tests (leaks too)
#   3. clang libFuzzer build, a bounded fuzz run of every parser seeded with the fixtures
# --quick runs step 1 only. FUZZ_SECONDS (default 60) bounds each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '\n==== %s\n' "$*"; }

passed=0
# Runs ctest in a build folder and adds its test count to `passed` (set -e stops on failure).
run_ctest() {
    local dir=$1 log
    log=$(mktemp)
    ctest --test-dir "$dir" --output-on-failure | tee "$log"
    passed=$((passed + $(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$log")))
    rm -f "$log"
}

# the test-only Python packages (the official openai client, for the server's test), in a
# virtual environment of the build's own
step "test environment (build-venv: openai)"
[ -x build-venv/bin/python ] || python3 -m venv build-venv
build-venv/bin/python -c "import openai" 2>/dev/null || build-venv/bin/pip install -q "openai==3.57.0"
venv_py=$PWD/build-venv/bin/python

step "release build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMAMBAC_WERROR=ON -DMAMBAC_TEST_PYTHON="$venv_py" >/dev/null
cmake --build build -j "$jobs"
run_ctest build
if [ "${1:-}" = "--quick" ]; then echo "check: $passed passed, 0 failed"; exit 0; fi

step "sanitizer build (ASan + UBSan with float-cast-overflow) + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMAMBAC_SANITIZE=ON -DMAMBAC_WERROR=ON -DMAMBAC_CUDA=OFF \
    -DMAMBAC_TEST_PYTHON="$venv_py" >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 run_ctest build-asan

step "fuzz (libFuzzer + ASan + UBSan), ${FUZZ_SECONDS:-60}s per target"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAMBAC_FUZZ=ON -DMAMBAC_CUDA=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_safetensors fuzz_pickle fuzz_torch fuzz_config fuzz_tokenizer_json fuzz_tokenize fuzz_gguf fuzz_state \
    fuzz_train_state fuzz_gguf_vocab fuzz_shard_index fuzz_serve_request
bash fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-60}"
passed=$((passed + 12)) # the twelve fuzz targets ran without a crash
echo "check: $passed passed, 0 failed"
