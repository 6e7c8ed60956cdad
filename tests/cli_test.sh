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
       mamba2-tiny/hf:ref mamba2-tiny/hf-f16:ref-hf-f16 mamba2-tiny/ssm:ref mamba2-groups/hf:ref mamba2-groups/ssm:ref
       falcon-mamba-tiny/hf:ref"
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
check "default model" test "$("$MAMBAC" generate --prompt-ids 1,2,3 -n 4 --temp 0 --print-ids | tr ',' '\n' | wc -l)" -eq 4
seeded=$("$MAMBAC" generate -m "$m" --prompt-ids 1,2 -n 20 --temp 1 --seed 7 --print-ids 2>/dev/null)
check "sampling is seeded" test -n "$seeded" -a "$seeded" = "$("$MAMBAC" generate -m "$m" --prompt-ids 1,2 -n 20 --temp 1 --seed 7 --print-ids 2>/dev/null)"

# Tokenizer commands: ids and bytes as HF tokenizers gives them (fixture cases).
TOKJ=$DATA/tokenizer/gpt-neox-20b-tokenizer.json CASES=$DATA/tokenizer/cases.jsonl
for k in 0 2 5 9 17; do
    "$TOOL" tokcase "$CASES" $k text >"$TMP/text"
    "$TOOL" tokcase "$CASES" $k decoded >"$TMP/decoded"
    want=$("$TOOL" tokcase "$CASES" $k ids)
    check "tokenize -f case $k" test "$("$MAMBAC" tokenize --tokenizer "$TOKJ" -f "$TMP/text")" = "$want"
    check "tokenize -p case $k" test "$("$MAMBAC" tokenize --tokenizer "$TOKJ" -p "$(cat "$TMP/text")")" = "$want"
    "$MAMBAC" detokenize --tokenizer "$TOKJ" --ids "$want" >"$TMP/out"
    check "detokenize case $k" cmp "$TMP/out" "$TMP/decoded"
done
expect_error "tokenize without a tokenizer" 2 "$MAMBAC" tokenize -p hi
expect_error "detokenize unknown id" 1 "$MAMBAC" detokenize --tokenizer "$TOKJ" --ids 1,99999999
echo '{"model": {"type": "Unigram"}, "pre_tokenizer": {"type": "ByteLevel"}}' >"$TMP/uni.json"
expect_error "unsupported tokenizer" 1 "$MAMBAC" tokenize --tokenizer "$TMP/uni.json" -p hi

# Text generation: a fixture model (ids < 512 are mostly ASCII in GPT-NeoX) with the NeoX tokenizer.
m1=$DATA/models/mamba1-tiny/hf
gen() { "$MAMBAC" generate -m "$m1" --tokenizer "$TOKJ" "$@" 2>"$TMP/gen.err"; }
full=$(gen -p " the and of a" -n 40 --temp 0)
check "generate text" test -n "$full"
check "timing on stderr" grep -q '^prompt: 4 tokens, .* | generated: 40 tokens' "$TMP/gen.err"
check "text = detokenized ids" test "$full" = "$("$MAMBAC" detokenize --tokenizer "$TOKJ" --ids "$(gen -p " the and of a" -n 40 --temp 0 --print-ids)")"
check "stdin prompt" test "$(echo -n " the and of a" | gen -p - -n 40 --temp 0)" = "$full"
echo -n " the and of a" >"$TMP/prompt.txt"
check "file prompt" test "$(gen -f "$TMP/prompt.txt" -n 40 --temp 0)" = "$full"
check "--echo prints the prompt first" test "$(gen -p " the and of a" -n 40 --temp 0 --echo)" = " the and of a$full"
check "tokenize -m uses the model's tokenizer" test "$("$MAMBAC" tokenize -m "$DATA/../../models/default" -p "Hello")" = \
    "$("$MAMBAC" tokenize --tokenizer "$DATA/../../models/default/tokenizer.json" -p "Hello")"
check "tokenize --show-pieces: a line per token" test "$("$MAMBAC" tokenize --tokenizer "$TOKJ" -p " the and of a" --show-pieces | wc -l)" = \
    "$("$MAMBAC" tokenize --tokenizer "$TOKJ" -p " the and of a" | tr ',' '\n' | wc -l)"
check "seeded text" test "$(gen -p "Once" -n 30 --temp 0.9 --seed 3)" = "$(gen -p "Once" -n 30 --temp 0.9 --seed 3)"
stop=${full:12:3} before=${full%%"$stop"*}
check "--stop cuts before the stop string" test "$(gen -p " the and of a" -n 40 --temp 0 --stop "$stop" --no-escape)" = "$before"
# escapes in --stop and -p (as llama-cli: on unless --no-escape)
hexstop=$(printf '\\x%02x' "'${stop:0:1}")${stop:1}
check "--stop with a \\xHH escape" test "$(gen -p " the and of a" -n 40 --temp 0 --stop "$hexstop")" = "$before"
gen -p ' the\tand' -n 1 --temp 0 >/dev/null; esc=$(sed -n 's/^prompt: \([0-9]*\) tokens.*/\1/p' "$TMP/gen.err")
gen -p " the$(printf '\t')and" -n 1 --temp 0 >/dev/null; tab=$(sed -n 's/^prompt: \([0-9]*\) tokens.*/\1/p' "$TMP/gen.err")
gen -p ' the\tand' -n 1 --temp 0 --no-escape >/dev/null; raw=$(sed -n 's/^prompt: \([0-9]*\) tokens.*/\1/p' "$TMP/gen.err")
check "-p processes \\t" test -n "$esc" -a "$esc" = "$tab"
check "--no-escape keeps it" test -n "$raw" -a "$raw" != "$tab"
# sampling ranges refused before the model loads (exit 2, naming the flag); a random seed printed and reusable
expect_error "--top-p 2" 2 "$MAMBAC" generate -m /nonexistent -p hi --top-p 2
expect_error "--temp inf" 2 "$MAMBAC" generate -m /nonexistent -p hi --temp inf
expect_error "--seed -2" 2 "$MAMBAC" generate -m /nonexistent -p hi --seed -2
r1=$(gen -p "Once" -n 20 --temp 0.9 --seed -1); seed=$(sed -n 's/^mambac: seed \([0-9]*\)$/\1/p' "$TMP/gen.err")
check "an unseeded sampled run prints its seed" test -n "$seed"
check "the printed seed repeats the run" test "$(gen -p "Once" -n 20 --temp 0.9 --seed "$seed")" = "$r1"
# EOS: a copy of the model whose eos is the first greedy token stops at once, unless --ignore-eos.
ref=$DATA/models/mamba1-tiny/ref.safetensors
first=$("$TOOL" greedy "$ref" | cut -d, -f1) prompt=$("$TOOL" ids "$ref" prompt)
mkdir "$TMP/eos" && cp "$m1"/* "$TMP/eos/" && sed -i "s/\"eos_token_id\": 0/\"eos_token_id\": $first/" "$TMP/eos/config.json"
check "stops at eos" test -z "$("$MAMBAC" generate -m "$TMP/eos" --prompt-ids "$prompt" -n 5 --temp 0 --print-ids 2>"$TMP/eos.err")"
check "an end at once is said on stderr" grep -q "ended the text at once" "$TMP/eos.err"
check "--ignore-eos" test "$("$MAMBAC" generate -m "$TMP/eos" --prompt-ids "$prompt" -n 3 --temp 0 --print-ids --ignore-eos 2>/dev/null)" = \
                          "$("$TOOL" greedy "$ref" | cut -d, -f1-3)"
check "default model generates text" "$MAMBAC" generate -p "ROMEO:" -n 8
# -i: with no input it is the plain run; a turn continues the same state (as --state-out /
# --state-in would); -r stops an answer where the text shows it; -cnv runs ChatML turns.
"$MAMBAC" generate -p "ROMEO:" -n 8 --temp 0 >"$TMP/plain.txt" 2>/dev/null
printf '' | "$MAMBAC" generate -i -p "ROMEO:" -n 8 --temp 0 >"$TMP/i0.txt" 2>/dev/null
check "-i with no input = the plain run" cmp "$TMP/plain.txt" "$TMP/i0.txt"
printf 'JULIET:\n' | "$MAMBAC" generate -i -p "ROMEO:" -n 8 --temp 0 --in-prefix '\n' >"$TMP/i1.txt" 2>"$TMP/i1.err"
"$MAMBAC" generate -p "ROMEO:" -n 8 --temp 0 --state-out "$TMP/turn1.state" >"$TMP/t1.txt" 2>/dev/null
"$MAMBAC" generate --state-in "$TMP/turn1.state" -p '\nJULIET:\n' -n 8 --temp 0 >"$TMP/t2.txt" 2>/dev/null
cat "$TMP/t1.txt" "$TMP/t2.txt" >"$TMP/t12.txt"
check "-i: a second turn continues the state" cmp "$TMP/t12.txt" "$TMP/i1.txt"
check "-i: totals over the turns" grep -q '^prompt: .* | generated: 16 tokens' "$TMP/i1.err"
full=$("$MAMBAC" generate -p "ROMEO:" -n 40 --temp 0 2>/dev/null)
rp=${full:12:3} first=${full%%"${full:12:3}"*}${full:12:3}
rev=$(printf '' | "$MAMBAC" generate -i -p "ROMEO:" -n 40 --temp 0 -r "$rp" 2>/dev/null)
check "-r: the answer stops at the reverse prompt, printed" test -n "$rp" -a "${rev#"$first"}" != "$rev" -a "${full#"$rev"}" != "$full" -a ${#rev} -lt ${#full}
cnv=$(printf 'Hello.\nAnd then?\n' | "$MAMBAC" generate -cnv -p "You are a poet." -n 6 --temp 0 2>"$TMP/cnv.err")
check "-cnv: two answers" grep -q '^prompt: .* | generated: 12 tokens' "$TMP/cnv.err"
# logits and grad from text: the same numbers as from the tokenizer's ids
tids=$("$MAMBAC" tokenize -m "$DATA/../../models/default" -p 'ROMEO:\tO' 2>/dev/null)
"$MAMBAC" logits -p 'ROMEO:\tO' -o "$TMP/lt.npy" 2>/dev/null; "$MAMBAC" logits --prompt-ids "$tids" -o "$TMP/li.npy" 2>/dev/null
check "logits -p = logits of its ids" cmp "$TMP/lt.npy" "$TMP/li.npy"
printf 'ROMEO:\tO' >"$TMP/prompt.txt"; printf 'a\tb' >"$TMP/tab.txt"
"$MAMBAC" logits -f "$TMP/prompt.txt" -o "$TMP/lf.npy" 2>/dev/null
check "logits -f = logits of its ids" cmp "$TMP/lf.npy" "$TMP/li.npy"
"$MAMBAC" grad -p 'ROMEO:\tO' -o "$TMP/gt.safetensors" >/dev/null 2>&1; "$MAMBAC" grad --prompt-ids "$tids" -o "$TMP/gi.safetensors" >/dev/null 2>&1
check "grad -p = grad of its ids" cmp "$TMP/gt.safetensors" "$TMP/gi.safetensors"
check "tokenize -p processes escapes" test "$("$MAMBAC" tokenize -m "$DATA/../../models/default" -p 'a\tb')" = \
    "$("$MAMBAC" tokenize -m "$DATA/../../models/default" -f "$TMP/tab.txt")"
check "tokenize --no-escape keeps them" test "$("$MAMBAC" tokenize -m "$DATA/../../models/default" --no-escape -p 'a\tb')" = "97,92,116,98"
expect_error "logits with ids and text" 2 "$MAMBAC" logits -p a --prompt-ids 1 -o "$TMP/x.npy"
expect_error "grad of one token" 1 "$MAMBAC" grad -p a -o "$TMP/x.safetensors"
# chat through a pseudo-terminal (script(1)): the template's text fed to the state (the
# first answer = generate of that text), /save and /load, Ctrl-C stops an answer.
if command -v script >/dev/null; then
    chat() { script -q -e -c "$*" /dev/null; }
    (printf 'Hello\n'; sleep 1; printf '/save %s\n/quit\n' "$TMP/chat.state") |
        chat "$MAMBAC" chat --chat-template plain -n 10 --temp 0 >"$TMP/chat.out" 2>&1
    check "chat: exit 0, the state saved" test $? -eq 0 -a -s "$TMP/chat.state"
    want=$("$MAMBAC" generate -p 'User: Hello\nAssistant: ' -n 10 --temp 0 --stop '\n' 2>/dev/null)
    check "chat: the answer = generate of the template's text" grep -qF -- "$want" "$TMP/chat.out"
    (printf '/load %s\n' "$TMP/chat.state"; sleep 1; printf 'Again\n'; sleep 1; printf '/quit\n') |
        chat "$MAMBAC" chat --chat-template plain -n 5 --temp 0 >"$TMP/chat2.out" 2>&1
    check "chat: /load continues a saved conversation" grep -q "^loaded .* (3[0-9] tokens)" "$TMP/chat2.out"
    (printf 'Hello\n'; sleep 1; printf '\003'; sleep 0.5; printf '/quit\n') |
        chat "$MAMBAC" chat -n 100000 --temp 0 >"$TMP/chat3.out" 2>&1
    check "chat: Ctrl-C stops the answer, the chat goes on" grep -q "stopped" "$TMP/chat3.out"
    # progress on a terminal: a long prompt's tokens, rate and time left; quantize per tensor
    head -c 10000 /dev/zero | tr '\0' 'a' >"$TMP/long.txt"
    chat "$MAMBAC" generate -f "$TMP/long.txt" -n 1 --temp 0 >"$TMP/prog.out" 2>&1
    check "a long prompt's progress on a terminal" grep -aq "prompt: 4096 / 10000 tokens (41%), .* tok/s, .* s left" "$TMP/prog.out"
    chat "$MAMBAC" quantize -o "$TMP/prog.gguf" --type q8_0 >"$TMP/qprog.out" 2>&1
    check "quantize's progress on a terminal" grep -aq "quantize: 1 / [0-9]* tensors (token_embd.weight)" "$TMP/qprog.out"
    "$MAMBAC" generate -f "$TMP/long.txt" -n 1 --temp 0 >/dev/null 2>"$TMP/noprog.err"
    check "no progress lines in a log" test "$(grep -c "tokens (" "$TMP/noprog.err")" = 0
else
    bad "script(1) (bsdutils) is missing: chat and progress are not tested"
fi
check "--no-mmap: the same text" test "$("$MAMBAC" generate --no-mmap -p "ROMEO:" -n 8 --temp 0 2>/dev/null)" = \
    "$("$MAMBAC" generate -p "ROMEO:" -n 8 --temp 0 2>/dev/null)"
expect_error "chat: unknown template" 2 "$MAMBAC" chat --chat-template jinja-magic
expect_error "-r without -i" 2 "$MAMBAC" generate -p hi -r x
expect_error "-i with --print-ids" 2 "$MAMBAC" generate -i --prompt-ids 1 --print-ids
expect_error "-i with the prompt from stdin" 2 "$MAMBAC" generate -i -p -
expect_error "no tokenizer in the folder" 1 "$MAMBAC" generate -m "$m1" -p "hi"
expect_error "empty text prompt" 1 "$MAMBAC" generate -m "$m1" --tokenizer "$TOKJ" -p ""
expect_error "two prompts" 2 "$MAMBAC" generate -m "$m1" -p "a" --prompt-ids 1

# GGUF: quantize writes a file generate reads (tokenizer embedded); f32 keeps the numbers.
check "quantize f32" "$MAMBAC" quantize -m "$m1" -o "$TMP/m1.gguf" --type f32
check "gguf greedy = folder greedy" test "$("$MAMBAC" generate -m "$TMP/m1.gguf" --prompt-ids "$prompt" -n 6 --temp 0 --print-ids)" = \
                                         "$("$MAMBAC" generate -m "$m1" --prompt-ids "$prompt" -n 6 --temp 0 --print-ids)"
check "quantize the default model" "$MAMBAC" quantize -o "$TMP/d.gguf" --type f32
check "gguf text = folder text" test "$("$MAMBAC" generate -m "$TMP/d.gguf" -p "ROMEO:" -n 12 --temp 0 2>/dev/null)" = \
                                     "$("$MAMBAC" generate -p "ROMEO:" -n 12 --temp 0 2>/dev/null)"
check "quantize q4_0" "$MAMBAC" quantize -m "$m1" -o "$TMP/q4.gguf" --type q4_0
check "info on gguf" grep -q '^dtype: q4_0$' <("$MAMBAC" info -m "$TMP/q4.gguf")
expect_error "quantize to an unknown type" 2 "$MAMBAC" quantize -m "$m1" -o "$TMP/x.gguf" --type q3_k
expect_error "quantize to a llama.cpp mix" 2 "$MAMBAC" quantize -m "$m1" -o "$TMP/x.gguf" --type Q4_K_M
check "quantize takes llama.cpp's type names" "$MAMBAC" quantize -m "$m1" -o "$TMP/Q8.gguf" --type Q8_0
before_sum=$(cksum <"$TMP/q4.gguf")
expect_error "quantize never overwrites" 1 "$MAMBAC" quantize -m "$m1" -o "$TMP/q4.gguf" --type q8_0
check "the existing output is untouched" test "$(cksum <"$TMP/q4.gguf")" = "$before_sum"
expect_error "re-quantizing needs --allow-requantize" 1 "$MAMBAC" quantize -m "$TMP/q4.gguf" -o "$TMP/rq.gguf" --type q8_0
check "no output after a refused re-quantize" test ! -e "$TMP/rq.gguf"
check "--allow-requantize" "$MAMBAC" quantize -m "$TMP/q4.gguf" -o "$TMP/rq.gguf" --type q8_0 --allow-requantize
check "dequantizing to f32 needs no flag" "$MAMBAC" quantize -m "$TMP/q4.gguf" -o "$TMP/dq.gguf" --type f32
expect_error "--stop with --print-ids" 2 "$MAMBAC" generate -m "$m1" --prompt-ids 1 --stop x --print-ids
expect_error "--state-out into a missing folder, before generating" 2 "$MAMBAC" generate -m "$m1" --prompt-ids 1 --state-out "$TMP/no/dir/s"
check "detokenize takes spaces after commas" "$MAMBAC" detokenize --tokenizer "$TOKJ" --ids "72, 101, 108"
expect_error "MAMBAC_ISA naming no kernel set" 1 env MAMBAC_ISA=frobnicate "$MAMBAC" generate -m "$m1" --prompt-ids 1 -n 1
expect_error "quantize into a missing folder" 1 "$MAMBAC" quantize -m "$m1" -o "$TMP/no/dir/x.gguf" --type q8_0
head -c 100 "$TMP/q4.gguf" >"$TMP/cut.gguf"
expect_error "truncated gguf" 1 "$MAMBAC" info -m "$TMP/cut.gguf"

# grad and train: the loss line and a gradients file; a tiny run that trains, generates, resumes.
check "grad" grep -q '^loss ' <("$MAMBAC" grad -m "$m" --prompt-ids "$("$TOOL" ids "$DATA/models/mamba2-tiny/ref.safetensors")" -o "$TMP/g.safetensors" 2>/dev/null)
check "grad file" test -s "$TMP/g.safetensors"
expect_error "grad with one id" 2 "$MAMBAC" grad -m "$m" --prompt-ids 5 -o "$TMP/g2.safetensors"
for i in $(seq 40); do echo "First Citizen: Before we proceed any further, hear me speak."; done >"$TMP/text.txt"
trn() { "$MAMBAC" train --data "$TMP/text.txt" --d-model 16 --layers 1 --batch 2 --seq 16 --eval-every 2 -t 2 "$@" 2>"$TMP/train.err"; }
check "train" trn -o "$TMP/run" --steps 4
check "train log" test "$(wc -l <"$TMP/run/log.csv")" -eq 5
check "generate from a checkpoint" "$MAMBAC" generate -m "$TMP/run" -p "First" -n 5
check "resume" "$MAMBAC" train --resume "$TMP/run" --steps 6
check "resumed log" test "$(wc -l <"$TMP/run/log.csv")" -eq 7
# the state names the device the run trained on; resumed without --device it goes there again
check "the state names the device" grep -Eq '"device":[[:space:]]*"cpu"' "$TMP/run/train_state.json"
cp -r "$TMP/run" "$TMP/wasgpu" && sed -i -E 's/"device":([[:space:]]*)"cpu"/"device":\1"cuda"/' "$TMP/wasgpu/train_state.json"
"$MAMBAC" train --resume "$TMP/wasgpu" --steps 7 >/dev/null 2>"$TMP/wasgpu.err"
check "a GPU run resumes on the GPU" grep -q '^resuming on cuda (f32), where the run trained' "$TMP/wasgpu.err"
check "--device cpu moves it" "$MAMBAC" train --resume "$TMP/wasgpu" --device cpu --steps 7
# FalconMamba trains from its transformers folder, and its checkpoint stays one
check "train FalconMamba" "$MAMBAC" train --init-from "$DATA/models/falcon-mamba-tiny/hf" --data "$TMP/text.txt" --batch 2 \
    --seq 16 --eval-every 1000 -t 2 -o "$TMP/frun" --steps 2
check "its checkpoint is FalconMamba" grep -q '"falcon_mamba"' "$TMP/frun/config.json"
check "generate from it" "$MAMBAC" generate -m "$TMP/frun" --prompt-ids 5,6 -n 3
# Ctrl-C (SIGINT) once a step is logged: the step finishes, a checkpoint is saved, exit 0; it resumes
"$MAMBAC" train --data "$TMP/text.txt" --d-model 16 --layers 1 --batch 2 --seq 16 --eval-every 1000 -t 1 -o "$TMP/int" \
    --steps 1000000 2>"$TMP/int.err" & pid=$!
for _ in $(seq 600); do [ -s "$TMP/int/log.csv" ] && [ "$(wc -l <"$TMP/int/log.csv")" -ge 3 ] && break; sleep 0.1; done
kill -INT "$pid"; wait "$pid"; st=$?
check "train stops on SIGINT with exit 0" test "$st" -eq 0
check "the stop says it saved" grep -q "stopped; saved" "$TMP/int.err"
step=$(sed -n 's/^[[:space:]]*"step":[[:space:]]*\([0-9]*\).*/\1/p' "$TMP/int/train_state.json")
check "the interrupted run's checkpoint is past step 0" test "${step:-0}" -ge 2
check "the interrupted run resumes" "$MAMBAC" train --resume "$TMP/int" --steps $((step + 1))
check "train mamba2" trn -o "$TMP/run2" --arch mamba2 --headdim 8 --d-state 8 --steps 2
check "train on tokens (tokenizer.json)" trn -o "$TMP/run3" --tokenizer "$TOKJ" --steps 2
# a GPU asked for where there is none (or no CUDA build): one line, and no run folder
trg() { "$MAMBAC" train --data "$TMP/text.txt" --d-model 16 --layers 1 --batch 2 --seq 16 -t 2 -o "$TMP/gpurun" --steps 2 "$@"; }
if ! nvidia-smi -L >/dev/null 2>&1; then
    expect_error "train --device cuda without a GPU" 1 trg --device cuda
    check "no folder from a failed GPU run" test ! -e "$TMP/gpurun"
fi
expect_error "train --device cuda:99" 1 trg --device cuda:99
expect_error "train --device tpu" 2 trg --device tpu
expect_error "train --precision bf16 on the CPU" 2 trg --precision bf16
check "no folder from refused GPU runs" test ! -e "$TMP/gpurun"

# mqar: a tiny model learns the recall task past chance (1/32 here), --eval repeats the
# score from the folder; impossible tasks refused before anything is written
mq() { "$MAMBAC" mqar --vocab 64 --seq 32 --kv 4 --d-model 32 --layers 2 --batch 32 --lr 3e-3 --eval-examples 200 -t 2 "$@"; }
mq -o "$TMP/mqar" --steps 300 >"$TMP/mqar.out" 2>"$TMP/mqar.err"
acc=$(sed -n 's/.*accuracy \([0-9.]*\) on.*/\1/p' "$TMP/mqar.out")
if [ -n "$acc" ] && awk "BEGIN { exit !($acc > 0.0625) }"; then ok; else bad "mqar accuracy '$acc' not above twice chance: $(cat "$TMP/mqar.out" "$TMP/mqar.err" | tail -3)"; fi
check "mqar.json written" grep -q '"accuracy"' "$TMP/mqar/mqar.json"
again=$("$MAMBAC" mqar --eval -m "$TMP/mqar" --vocab 64 --seq 32 --kv 4 --eval-examples 200 -t 2 --json "$TMP/mq2.json" | sed -n 's/.*accuracy \([0-9.]*\) on.*/\1/p')
if [ "$again" = "$acc" ]; then ok; else bad "mqar --eval gives $again, training printed $acc"; fi
expect_error "mqar with 9 pairs in 32 tokens" 2 mq -o "$TMP/mqbad" --kv 9 --steps 1
expect_error "mqar needs -o" 2 mq --steps 1
check "no folder from a refused mqar" test ! -e "$TMP/mqbad"
check "token model keeps its tokenizer" cmp "$TMP/run3/tokenizer.json" "$TOKJ"
check "token model generates" "$MAMBAC" generate -m "$TMP/run3" -p "First Citizen" -n 3
# prepare-data: a folder of documents, a JSON-lines file and one text, tokenized once; the
# trainer maps the token file; documents held out whole by a seeded shuffle; bad files refused
mkdir -p "$TMP/docs"
for i in 1 2 3 4 5; do for k in $(seq 8); do echo "Document $i, line $k: the quick brown fox."; done >"$TMP/docs/d$i.txt"; done
pd() { "$MAMBAC" prepare-data "$@" 2>"$TMP/pd.err"; }
check "prepare-data a folder" pd --data "$TMP/docs" --tokenizer "$TOKJ" --val-docs 2 -o "$TMP/docs.tok"
check "prepare-data counts documents" grep -q '(3 documents), [0-9]* held out (2 documents), 2-byte tokens, vocabulary 50277$' "$TMP/pd.err"
check "prepare-data again: the same file" pd --data "$TMP/docs" --tokenizer "$TOKJ" --val-docs 2 -o "$TMP/docs2.tok"
check "prepare-data is deterministic" cmp "$TMP/docs.tok" "$TMP/docs2.tok"
check "prepare-data: another seed, another split" pd --data "$TMP/docs" --tokenizer "$TOKJ" --val-docs 2 --seed 7 -o "$TMP/docs3.tok"
check "prepare-data: the split differs" test "$(cmp -s "$TMP/docs.tok" "$TMP/docs3.tok"; echo $?)" -ne 0
check "train on a token file" "$MAMBAC" train --data "$TMP/docs.tok" --tokenizer "$TOKJ" --d-model 16 --layers 1 --batch 2 --seq 16 --steps 2 -t 2 -o "$TMP/tokrun"
check "its model generates" "$MAMBAC" generate -m "$TMP/tokrun" -p "Document" -n 3
check "resume on a token file" "$MAMBAC" train --resume "$TMP/tokrun" --steps 3
expect_error "a token file needs its tokenizer" 1 "$MAMBAC" train --data "$TMP/docs.tok" -o "$TMP/tokrun2"
expect_error "a token file refuses another tokenizer" 1 "$MAMBAC" train --data "$TMP/docs.tok" --tokenizer "$DATA/tokenizer/gpt2-tokenizer.json" -o "$TMP/tokrun2"
printf '%s\n' '{"text": "alpha beta gamma delta"}' '{"text": "epsilon zeta eta theta"}' '{"text": "iota kappa"}' >"$TMP/docs.jsonl"
check "prepare-data a JSON-lines file (bytes)" pd --data "$TMP/docs.jsonl" --val-docs 1 -o "$TMP/jl.tok"
check "its three documents" grep -q '(2 documents), [0-9]* held out (1 documents), 2-byte tokens, vocabulary 256$' "$TMP/pd.err"
check "prepare-data one text: its tail held out" pd --data "$TMP/text.txt" --val-frac 0.25 -o "$TMP/one.tok"
check "train on bytes from a token file" "$MAMBAC" train --data "$TMP/one.tok" --d-model 16 --layers 1 --batch 2 --seq 16 --steps 2 -o "$TMP/tokrun3"
mkdir -p "$TMP/wrapped"
printf '%s\n' "A line of prose long enough to have been wrapped by the printer," "so it runs on here." "" "Verse, short," "keeps its breaks." >"$TMP/wrapped/w.txt"
check "prepare-data --unwrap" pd --data "$TMP/wrapped" --unwrap --val-docs 0 -o "$TMP/unw.tok"
check "--unwrap joined the one wrapped line" grep -q '^unwrapped: 1 line breaks' "$TMP/pd.err"
check "prepare-data without --unwrap" pd --data "$TMP/wrapped" --val-docs 0 -o "$TMP/wr.tok"
check "the two token files differ" test "$(cmp -s "$TMP/unw.tok" "$TMP/wr.tok"; echo $?)" -ne 0
check "and have the same length" test "$(stat -c %s "$TMP/unw.tok")" = "$(stat -c %s "$TMP/wr.tok")"
expect_error "prepare-data: an existing output" 1 "$MAMBAC" prepare-data --data "$TMP/docs" -o "$TMP/docs.tok"
expect_error "prepare-data: every document held out" 1 "$MAMBAC" prepare-data --data "$TMP/docs" --val-docs 5 -o "$TMP/x.tok"
check "prepare-data left no file on failure" test ! -e "$TMP/x.tok"
printf '%s\n' '{"text": "ok"}' 'not json' >"$TMP/bad.jsonl"
expect_error "prepare-data: a bad JSON line" 1 "$MAMBAC" prepare-data --data "$TMP/bad.jsonl" -o "$TMP/x.tok"
check "prepare-data names the line" grep -q 'line 2' "$TMP/err"
head -c 100 "$TMP/docs.tok" >"$TMP/trunc.tok"
expect_error "a truncated token file" 1 "$MAMBAC" train --data "$TMP/trunc.tok" --tokenizer "$TOKJ" -o "$TMP/tokrun4"
check "says the sizes disagree" grep -q 'do not match the file' "$TMP/err"
{ head -c 64 "$TMP/jl.tok"; printf '\377\377'; tail -c +67 "$TMP/jl.tok"; } >"$TMP/badid.tok"
expect_error "a token id beyond the vocabulary" 1 "$MAMBAC" train --data "$TMP/badid.tok" -o "$TMP/tokrun4"
check "names the token" grep -q 'token 0 is id 65535, beyond the vocabulary of 256' "$TMP/err"
# 4-byte tokens (vocabulary 70000), the second id 0xffffffff: a negative int32 if read signed
{ printf 'MCTOKENS\001\000\000\000\004\000\000\000\160\021\001\000\377\377\377\377'
  printf '\002\000\000\000\000\000\000\000''\000\000\000\000\000\000\000\000''\001\000\000\000\000\000\000\000'
  printf '\000\000\000\000\000\000\000\000''\000\000\000\000\000\000\000\000''\001\000\000\000\377\377\377\377'; } >"$TMP/neg.tok"
expect_error "a 4-byte id of 2^31 or more" 1 "$MAMBAC" train --data "$TMP/neg.tok" -o "$TMP/tokrun4"
check "names it unsigned" grep -q 'token 1 is id 4294967295, beyond the vocabulary of 70000' "$TMP/err"
{ printf 'MCTOKENS\002\000\000\000'; tail -c +13 "$TMP/jl.tok"; } >"$TMP/v2.tok"
expect_error "a token file of another version" 1 "$MAMBAC" train --data "$TMP/v2.tok" -o "$TMP/tokrun4"
# perplexity: windows of 16 over 100 bytes score 100 - 7 bytes (one per window is only context)
head -c 100 "$TMP/text.txt" >"$TMP/p100.txt"
check "perplexity" grep -q '^tokens scored: 93 (windows of 16)$' <("$MAMBAC" perplexity -f "$TMP/p100.txt" --ctx 16 2>/dev/null)
check "perplexity byte range" grep -q '^tokens scored: 19 ' <("$MAMBAC" perplexity -f "$TMP/text.txt" --from 10 --to 30 --ctx 64 2>/dev/null)
expect_error "perplexity of one byte" 1 "$MAMBAC" perplexity -f "$TMP/text.txt" --to 1
# eval: every built-in task over the test subset (tests/data/eval), a task file of each kind,
# results and samples written whole; bad tasks refused before the model loads
tasks=lambada_openai,piqa,arc_easy,arc_challenge,openbookqa,winogrande,wsc273,copa,boolq,siqa,commonsense_qa,hellaswag
check "eval built-in tasks" "$MAMBAC" eval --task "$tasks" --data "$DATA/eval" -o "$TMP/res.json" --log-samples "$TMP/samples.jsonl"
for t in ${tasks//,/ }; do check "eval results for $t" grep -q "\"alias\":[[:space:]]*\"$t\"" "$TMP/res.json"; done
check "eval results: acc and its stderr for each task (lm-eval's keys)" test "$(grep -c '"acc,none":' "$TMP/res.json")" -eq 12 -a "$(grep -c '"acc_stderr,none":' "$TMP/res.json")" -eq 12
check "eval results: acc_norm where lm-eval reports it (piqa, arc x2, openbookqa, hellaswag)" test "$(grep -c '"acc_norm,none":' "$TMP/res.json")" -eq 5
check "eval samples: a line an item (8 a task, 3 hellaswag)" test "$(wc -l <"$TMP/samples.jsonl")" -eq 91
printf '%s\n' '{"query": "Q: 2 + 2 =", "choices": ["4", "5", "22"], "gold": 0}' '{"query": "Q: red or", "choices": ["blue", "green"], "gold": 1}' >"$TMP/mc.jsonl"
printf '%s\n' '{"context_options": ["The cup is full", "The cup is empty"], "continuation": "so pour it out.", "gold": 0}' >"$TMP/partial.jsonl"
printf '%s\n' '{"context": "First Citizen: Before we", "continuation": " proceed"}' >"$TMP/ll.jsonl"
check "eval task files of each kind" "$MAMBAC" eval --task "jsonl:$TMP/mc.jsonl,jsonl:$TMP/partial.jsonl,jsonl:$TMP/ll.jsonl" --limit 5
check "eval --limit" grep -q '^| piqa | 3 | acc |' <("$MAMBAC" eval --task piqa --data "$DATA/eval" --limit 3)
expect_error "eval unknown task" 2 "$MAMBAC" eval --task frobnicate
expect_error "eval task named twice" 2 "$MAMBAC" eval --task piqa,piqa --data "$DATA/eval"
expect_error "eval built-in task without --data" 2 "$MAMBAC" eval --task piqa
printf '%s\n' '{"query": "Q", "choices": ["a"], "gold": 0}' 'not json' >"$TMP/badtask.jsonl"
expect_error "eval malformed task line" 1 "$MAMBAC" eval --task "jsonl:$TMP/badtask.jsonl" -o "$TMP/never.json"
check "eval wrote no results on failure" test ! -e "$TMP/never.json"
# perplexity: the default model is byte-level, so every byte is a token scored (windows of 64
# and whole: lm-eval's rolling windows each score the bytes of their own stretch); a folder
# is its .txt files; the curve's buckets count every scored token
head -c 300 "$TMP/text.txt" >"$TMP/ppl.txt"
check "eval perplexity, windows of 64" "$MAMBAC" eval --task perplexity --data "$TMP/ppl.txt" --ctx 64 -o "$TMP/ppl.json" --curve "$TMP/curve.csv"
check "eval perplexity scores every token" grep -Eq '"tokens":[[:space:]]+300$' "$TMP/ppl.json"
check "eval perplexity curve counts them" test "$(awk -F, 'NR > 1 { n += $3 } END { print n }' "$TMP/curve.csv")" -eq 300
mkdir -p "$TMP/books" && cp "$TMP/ppl.txt" "$TMP/books/a.txt" && head -c 100 "$TMP/text.txt" >"$TMP/books/b.txt" && echo skip >"$TMP/books/c.md"
check "eval perplexity of a folder" grep -q '^| perplexity | 2 | bits_per_byte |' <("$MAMBAC" eval --task perplexity --data "$TMP/books" --ctx 0)
expect_error "eval perplexity without --data" 2 "$MAMBAC" eval --task perplexity
printf '%s\n' '{"query": "Q", "choices": ["a", "b"], "gold": 2}' >"$TMP/badgold.jsonl"
expect_error "eval gold out of range" 1 "$MAMBAC" eval --task "jsonl:$TMP/badgold.jsonl"
printf '%s\n' '{"query": "Q", "choices": ["a", "b"], "gold": 1e300}' >"$TMP/hugegold.jsonl"
expect_error "eval gold far out of range" 1 "$MAMBAC" eval --task "jsonl:$TMP/hugegold.jsonl"
expect_error "train without data" 2 "$MAMBAC" train -o "$TMP/x"
expect_error "train into an existing folder" 1 "$MAMBAC" train --data "$TMP/text.txt" -o "$TMP/run" --steps 1
expect_error "resume with other data" 2 "$MAMBAC" train --resume "$TMP/run" --data "$TMP/text.txt"
expect_error "inconsistent architecture" 1 "$MAMBAC" train --data "$TMP/text.txt" -o "$TMP/bad" --arch mamba2 --headdim 5 --d-model 16

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
# help for every command (COMMAND --help, -h, help COMMAND): its usage line, options, an example; exit 0
for c in generate chat logits info tokenize detokenize init quantize train perplexity eval grad bench; do
    check "$c --help" grep -q "^usage: mambac $c" <("$MAMBAC" "$c" --help)
    check "$c -h lists options and an example" grep -q "^example: mambac $c" <("$MAMBAC" "$c" -m x -h)
    check "help $c" grep -q "^usage: mambac $c" <("$MAMBAC" help "$c")
done
expect_error "help for an unknown command" 2 "$MAMBAC" help frobnicate
check "--version" grep -q "^mambac [0-9]" <("$MAMBAC" --version)
check "--version names the usable kernel sets" grep -q "^CPU kernel sets usable here: scalar" <("$MAMBAC" --version)

# cmake --install into a prefix: the installed binary uses the default model installed beside
# it (not the source tree's), MAMBAC_MODEL overrides it; header, libraries and pkg-config file
if command -v cmake >/dev/null; then
    cmake --install "$(dirname "$MAMBAC")" --prefix "$TMP/prefix" >/dev/null
    check "installed: the default model beside the binary" grep -q "^path: $TMP/prefix/share/mambac/models/default$" \
        <("$TMP/prefix/bin/mambac" info)
    check "installed: generates" "$TMP/prefix/bin/mambac" generate -p "ROMEO:" -n 4 --temp 0
    check "MAMBAC_MODEL overrides the default model" grep -q "^path: $m1$" <(MAMBAC_MODEL="$m1" "$TMP/prefix/bin/mambac" info)
    check "installed: header, libraries, pkg-config" test -f "$TMP/prefix/include/mambac.h" -a -f "$TMP/prefix/lib/libmambac.so" \
        -a -f "$TMP/prefix/lib/pkgconfig/mambac.pc"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
