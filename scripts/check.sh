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

# the test-only Python packages, in a virtual environment of the build's own: the official
# openai client (the server's test); numpy, pytest and lm-eval (the Python package's tests;
# lm-eval without its dataset and metric dependencies, which scoring does not import)
step "test environment (build-venv: openai, numpy, pytest, lm-eval)"
[ -x build-venv/bin/python ] || python3 -m venv build-venv
build-venv/bin/python -c "import openai, numpy, pytest, yaml, jinja2, requests, tqdm" 2>/dev/null ||
    build-venv/bin/pip install -q "openai==3.57.0" "numpy>=1.21" pytest pyyaml jinja2 requests tqdm
build-venv/bin/python -c "import lm_eval" 2>/dev/null || build-venv/bin/pip install -q --no-deps "lm_eval==0.4.13"
venv_py=$PWD/build-venv/bin/python

step "release build + tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMAMBAC_WERROR=ON -DMAMBAC_TEST_PYTHON="$venv_py" >/dev/null
cmake --build build -j "$jobs"
run_ctest build
if [ "${1:-}" = "--quick" ]; then echo "check: $passed passed, 0 failed"; exit 0; fi

# what a newcomer does: `pip install .` of a clean copy into a new virtual environment, then
# the README's Python example, from outside the source tree
step "python package: pip install . (clean copy, new venv) + the README example"
bash scripts/check_python_install.sh
passed=$((passed + 1))

step "sanitizer build (ASan + UBSan with float-cast-overflow) + tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMAMBAC_SANITIZE=ON -DMAMBAC_WERROR=ON -DMAMBAC_CUDA=OFF \
    -DMAMBAC_TEST_PYTHON="$venv_py" >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 run_ctest build-asan

step "fuzz (libFuzzer + ASan + UBSan), ${FUZZ_SECONDS:-60}s per target"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAMBAC_FUZZ=ON -DMAMBAC_CUDA=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_safetensors fuzz_pickle fuzz_torch fuzz_config fuzz_tokenizer_json fuzz_tokenize fuzz_gguf fuzz_state \
    fuzz_train_state fuzz_gguf_vocab fuzz_shard_index fuzz_serve_request fuzz_eval_task fuzz_token_file
bash fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-60}"
passed=$((passed + 14)) # the fourteen fuzz targets ran without a crash
echo "check: $passed passed, 0 failed"
