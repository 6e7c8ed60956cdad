#!/usr/bin/env bash
# tests/api/run.sh BUILD_DIR SOURCE_DIR [CFLAGS...] — compiles api_threads.c and the
# README's library example out of tree against include/mambac.h and BUILD_DIR/libmambac.so
# only (no internal header, no static library), then runs them on a test model.
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

# The README's library example, as printed there (only its model path pointed at a fixture):
# it must compile warning-free against the header and the shared library, and run.
awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' "$src/README.md" |
    sed "s|\"mamba-130m-hf\"|\"$src/tests/data/models/mamba1-tiny/hf\"|" >"$out/readme.c"
cc -std=c11 -Wall -Wextra -Werror "$@" -I "$src/include" "$out/readme.c" -L "$build" -lmambac -Wl,-rpath,"$build" \
    -o "$out/readme" || { echo "the README's example does not compile"; echo "0 passed, 1 failed"; exit 1; }
(cd "$out" && ./readme >readme.out) || { echo "the README's example failed"; echo "0 passed, 1 failed"; exit 1; }
grep -qE '^[0-9]+ [0-9]+$' "$out/readme.out" || { echo "the README's example printed: $(cat "$out/readme.out")"; exit 1; }
echo "README example: compiled and ran ($(cat "$out/readme.out"))"
