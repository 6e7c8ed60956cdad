#!/usr/bin/env bash
# fuzz/run.sh BUILD_DIR SECONDS — a bounded run of every fuzz target, seeded with the
# fixtures in tests/data and fuzz/seeds. New inputs go to a temporary corpus; a crash
# leaves its input in the current folder (crash-*) and fails the run.
set -eu
build=$1 secs=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
data=$root/tests/data/models
work=$(mktemp -d "${TMPDIR:-/tmp}/mambac-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
run() { # target max_len seed-dirs...
    local t=$1 max=$2 status=0; shift 2
    mkdir -p "$work/$t"
    echo "== fuzz_$t for ${secs}s"
    "$build/fuzz/fuzz_$t" -max_total_time="$secs" -max_len="$max" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$work/$t" "$@" >"$work/$t.log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' "$work/$t.log" || true
    if [ "$status" -ne 0 ]; then
        grep -E -A30 '^==[0-9]+==|runtime error|SUMMARY' "$work/$t.log" | head -60
        echo "fuzz_$t FAILED (status $status); the input is in ./crash-* or ./timeout-* / ./oom-*"
        exit 1
    fi
}
mkdir -p "$work/seeds-st" "$work/seeds-bin" "$work/seeds-cfg"
for f in "$data"/*/*.safetensors "$data"/*/*/model.safetensors; do cp "$f" "$work/seeds-st/$(echo "$f" | tr / _)"; done
for f in "$data"/*/*/pytorch_model.bin; do cp "$f" "$work/seeds-bin/$(echo "$f" | tr / _)"; done
for f in "$data"/*/*/config.json; do cp "$f" "$work/seeds-cfg/$(echo "$f" | tr / _)"; done
run safetensors 8192 "$work/seeds-st"
run pickle 8192 "$root/fuzz/seeds/pickle"
run torch 600000 "$work/seeds-bin" "$root/fuzz/seeds/torch"
run config 4096 "$work/seeds-cfg" "$root/fuzz/seeds/config"
mkdir -p "$work/seeds-tokjson" "$work/seeds-text"
cp "$root/fuzz/seeds/tokenizer/"*.json "$work/seeds-tokjson/"
head -c 4000 "$root/tests/data/tokenizer/cases.jsonl" >"$work/seeds-text/cases"
cp "$root/fuzz/seeds/text/"* "$work/seeds-text/" # long runs of combining marks (NFC), Hangul
run tokenizer_json 65536 "$work/seeds-tokjson"
run tokenize 4096 "$work/seeds-text"
mkdir -p "$work/seeds-gguf"
for f in "$root"/tests/data/gguf/*.gguf; do cp "$f" "$work/seeds-gguf/"; done
run gguf 400000 "$work/seeds-gguf"
run state 65536 "$root/fuzz/seeds/state"
run train_state 8192 "$root/fuzz/seeds/train_state"
run gguf_vocab 65536 "$root/fuzz/seeds/gguf_vocab"
run shard_index 16384 "$root/fuzz/seeds/shard_index"
run serve_request 65536 "$root/fuzz/seeds/serve_request"
run eval_task 16384 "$root/fuzz/seeds/eval_task"
run token_file 4096 "$root/fuzz/seeds/token_file"
