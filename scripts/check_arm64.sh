#!/usr/bin/env bash
# scripts/check_arm64.sh — the library, CLI and tests cross-built for aarch64 Linux (Debian's
# gcc-aarch64-linux-gnu, arm64 multiarch -dev packages: installed here with apt-get when
# missing, as root or through sudo), then run under qemu-user: the reference-kernel, quant,
# tokenizer and text tests, and every fixture's logits and greedy continuation through the
# CLI (one thread) against the float64 references. On aarch64 the kernels are the scalar
# set (no NEON kernels yet). One thread only: the qemu-user of Debian 12 (7.2) hangs in
# pthread_create, so the tests that start threads are not run here.
# Prints "arm64: N passed, N failed"; exit status 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user cmake make)
dev=(libcjson-dev libutf8proc-dev libedit-dev libmicrohttpd-dev)
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
for p in "${dev[@]}"; do dpkg-query -W -f='${Status}' "$p:arm64" 2>/dev/null | grep -q "install ok installed" || missing+=("$p:arm64"); done
if [ ${#missing[@]} -gt 0 ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
    $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}" || exit 1
fi
b=${BUILD:-build-arm64}
cmake -S . -B "$b" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release -DMAMBAC_CUDA=OFF >/dev/null &&
    cmake --build "$b" -j "$(nproc)" >/dev/null || { echo "arm64: the cross build failed"; exit 1; }
q() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$@"; }
passed=0 failed=0
for t in ops quant tokenizer text_stream; do
    line=$(timeout 600 qemu-aarch64 -L /usr/aarch64-linux-gnu "$b/tests/test_$t" 2>&1 | tail -1)
    echo "test_$t: $line"
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p') f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    passed=$((passed + ${p:-0})) failed=$((failed + ${f:-1}))
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
data=tests/data/models
for f in mamba1-tiny/hf:ref mamba1-tiny/hf-bf16:ref-hf-bf16 mamba1-bias/hf:ref mamba1-bias/ssm:ref mamba2-tiny/hf:ref \
         mamba2-tiny/hf-f16:ref-hf-f16 mamba2-groups/hf:ref falcon-mamba-tiny/hf:ref; do
    model=$data/${f%%:*} ref=$data/${f%%/*}/${f##*:}.safetensors
    ids=$(q "$b/tests/fixture_tool" ids "$ref") prompt=$(q "$b/tests/fixture_tool" ids "$ref" prompt)
    greedy=$(q "$b/tests/fixture_tool" greedy "$ref")
    cols=$(q "$b/mambac" info -m "$model" | sed -n 's/^vocab_size: //p')
    if q "$b/mambac" logits -m "$model" -t 1 --prompt-ids "$ids" -o "$tmp/out.npy" 2>/dev/null &&
        q "$b/tests/fixture_tool" compare "$tmp/out.npy" "$ref" "$cols" >/dev/null; then
        passed=$((passed + 1))
    else failed=$((failed + 1)); echo "FAIL: $f logits"; fi
    n=$(echo "$greedy" | tr ',' '\n' | wc -l)
    got=$(q "$b/mambac" generate -m "$model" -t 1 --prompt-ids "$prompt" -n "$n" --temp 0 --print-ids 2>/dev/null)
    if [ "$got" = "$greedy" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $f greedy"; fi
done
echo "arm64: $passed passed, $failed failed"
[ "$failed" = 0 ]
