#!/usr/bin/env bash
# tests/api/run.sh BUILD_DIR SOURCE_DIR [CFLAGS...] — compiles api_threads.c out of tree
# against include/mambac.h and BUILD_DIR/libmambac.so only (no internal header, no static
# library), then runs it on a test model.
set -euo pipefail
build=$1 src=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -std=c11 -Wall -Wextra -Werror "$@" -I "$src/include" "$src/tests/api/api_threads.c" -L "$build" -lmambac \
    -Wl,-rpath,"$build" -lpthread -o "$out/api_threads"
if nm -D --undefined-only "$out/api_threads" | grep -q " mc_"; then
    echo "api_threads reaches an internal symbol"; echo "0 passed, 1 failed"; exit 1
fi
"$out/api_threads" "$src/tests/data/models/mamba1-tiny/hf" "$src/tests/data/tokenizer/gpt2-tokenizer.json"
