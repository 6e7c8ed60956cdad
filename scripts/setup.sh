#!/usr/bin/env bash
# scripts/setup.sh — installs what the build needs on Debian / Ubuntu (the README's first
# command runs it): cmake, a C compiler, cJSON, utf8proc, libedit (chat's line editing) and
# libmicrohttpd (the server).
# apt-get runs only when a package is missing (as root, or through sudo). --test adds what the test command needs
# (clang and its libFuzzer / sanitizer runtime; python3 for the server's loopback test).
set -euo pipefail
pkgs=(cmake make gcc libc6-dev libcjson-dev libutf8proc-dev libedit-dev libmicrohttpd-dev)
if [ "${1:-}" = "--test" ]; then pkgs+=(clang libclang-rt-14-dev python3 python3-venv); fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends "${missing[@]}"
