#!/usr/bin/env bash
# cli_test.sh MAMBAC FIXTURE_TOOL DATA_DIR — the command line as scripts use it:
# logits / generate parity through the CLI for every fixture form, exit statuses,
# one-line errors, and no output file left behind on failure.
set -u
MAMBAC=$1 TOOL=$2 DATA=$3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mambac-cli-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@" >"$TMP/check.out" 2>&1; then ok; else bad "$what: $(head -c 300 "$TMP/check.out")"; fi; }

# expect_error WHAT WANT_STATUS CMD... : fails with that status, one 'mambac' line on stderr, nothing on stdout.
expect_error() {
    local what=$1 want=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"; local st=$?
    if [ "$st" -ne "$want" ]; then bad "$what: exit $st, want $want ($(cat "$TMP/err"))"; return; fi
    if [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -q '^mambac' "$TMP/err"; then bad "$what: stderr not one mambac line: $(cat "$TMP/err")"; return; fi
    if [ -s "$TMP/out" ]; then bad "$what: wrote to stdout"; return; fi
    ok
}

forms="mamba1-tiny/hf:ref mamba1-tiny/hf-bf16:ref-hf-bf16 mamba1-tiny/ssm:ref mamba1-bias/hf:ref mamba1-bias/ssm:ref
       mamba2-tiny/hf:ref mamba2-tiny/hf-f16:ref-hf-f16 mamba2-tiny/ssm:ref mamba2-groups/hf:ref mamba2-groups/ssm:ref"
for f in $forms; do
    model=$DATA/models/${f%%:*} case=${f%%/*} ref=$DATA/models/${f%%/*}/${f##*:}.safetensors
    ids=$("$TOOL" ids "$ref") prompt=$("$TOOL" ids "$ref" prompt) greedy=$("$TOOL" greedy "$ref")
    cols=$("$MAMBAC" info -m "$model" | sed -n 's/^vocab_size: //p')
    for ub in "" 1 7; do
        rm -f "$TMP/out.npy"
        check "$f logits ubatch=${ub:-all}" "$MAMBAC" logits -m "$model" --prompt-ids "$ids" -o "$TMP/out.npy" ${ub:+--ubatch $ub}
        check "$f logits ubatch=${ub:-all} parity" "$TOOL" compare "$TMP/out.npy" "$ref" "$cols"
    done
    n=$(echo "$greedy" | tr ',' '\n' | wc -l)
    got=$("$MAMBAC" generate -m "$model" --prompt-ids "$prompt" -n "$n" --temp 0 --print-ids)
    if [ "$got" = "$greedy" ]; then ok; else bad "$f greedy: got $got want $greedy"; fi
    # Prefix, save the state, continue from the file: the suffix logits match.
    cut=$(echo "$ids" | cut -d, -f1-10) rest=$(echo "$ids" | cut -d, -f11-)
    check "$f state-out" "$MAMBAC" logits -m "$model" --prompt-ids "$cut" -o "$TMP/a.npy" --state-out "$TMP/s.state"
    check "$f state-in" "$MAMBAC" logits -m "$model" --prompt-ids "$rest" -o "$TMP/b.npy" --state-in "$TMP/s.state"
    check "$f resumed parity" "$TOOL" compare "$TMP/b.npy" "$ref" "$cols" 10
done

m=$DATA/models/mamba2-tiny/hf
check "info" grep -q '^arch: mamba2$' <("$MAMBAC" info -m "$m")
check "info vocab" grep -q '^vocab_rows: 512$' <("$MAMBAC" info -m "$DATA/models/mamba2-tiny/ssm")
check "default model" test "$("$MAMBAC" generate --prompt-ids 1,2,3 -n 4 --temp 0 | tr ',' '\n' | wc -l)" -eq 4
check "sampling is seeded" test "$("$MAMBAC" generate -m "$m" --prompt-ids 1,2 -n 20 --temp 1 --seed 7)" = \
                                "$("$MAMBAC" generate -m "$m" --prompt-ids 1,2 -n 20 --temp 1 --seed 7)"

# Errors: status, one line, and no output file (an existing one is left as it was).
echo keep >"$TMP/keep.npy"
expect_error "missing model" 1 "$MAMBAC" logits -m "$TMP/nope" --prompt-ids 1,2 -o "$TMP/x.npy"
expect_error "id out of range" 1 "$MAMBAC" logits -m "$m" --prompt-ids 1,512 -o "$TMP/keep.npy"
check "existing output kept" grep -qx keep "$TMP/keep.npy"
expect_error "empty prompt" 1 "$MAMBAC" logits -m "$m" --prompt-ids "" -o "$TMP/x.npy"
expect_error "malformed ids" 1 "$MAMBAC" generate -m "$m" --prompt-ids 1,a,3
expect_error "negative id" 1 "$MAMBAC" generate -m "$m" --prompt-ids -1
expect_error "unwritable output" 1 "$MAMBAC" logits -m "$m" --prompt-ids 1,2 -o "$TMP/no/such/dir/x.npy"
expect_error "missing -o" 2 "$MAMBAC" logits -m "$m" --prompt-ids 1,2
expect_error "unknown option" 2 "$MAMBAC" generate -m "$m" --prompt-ids 1 --frobnicate
expect_error "bad ubatch" 2 "$MAMBAC" logits -m "$m" --prompt-ids 1 -o "$TMP/x.npy" --ubatch 0
expect_error "bad state file" 1 "$MAMBAC" logits -m "$m" --prompt-ids 1 -o "$TMP/x.npy" --state-in "$TMP/keep.npy"
mkdir "$TMP/broken" && cp "$m/config.json" "$TMP/broken/" && head -c 1000 "$m/model.safetensors" >"$TMP/broken/model.safetensors"
expect_error "truncated weights" 1 "$MAMBAC" logits -m "$TMP/broken" --prompt-ids 1 -o "$TMP/x.npy"
check "no partial file" test ! -e "$TMP/x.npy"
check "no temp files" test -z "$(ls "$TMP" | grep '\.tmp\.')"
expect_error "unknown command" 2 "$MAMBAC" frobnicate

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
