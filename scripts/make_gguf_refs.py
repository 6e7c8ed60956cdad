#!/usr/bin/env python3
"""GGUF files written by llama.cpp itself, for tests/test_gguf.c (compatibility).

For each fixture model in tests/data/models/*/hf, runs llama.cpp's
convert_hf_to_gguf.py (--outtype f32, f16, bf16, q8_0) and llama-quantize (q4_0,
q4_k_m from the f32 file), then, to keep the test data small, rewrites every file but
one without the tokenizer.* metadata (llama.cpp's built-in GPT-NeoX vocabulary, 1 MB,
cut to the fixtures' 512 rows): all other keys and every tensor's bytes are copied
unchanged. For the tokenizer-from-GGUF tests it copies llama.cpp's vocabulary files
models/ggml-vocab-gpt-2.gguf with its
.inp / .out (texts and the ids llama.cpp's own tokenizer gives them).

Usage: python3 scripts/make_gguf_refs.py LLAMA_CPP_DIR [MODEL...]
  LLAMA_CPP_DIR: a llama.cpp source tree with build/bin/llama-quantize built (e.g. the
  one vendored in the llama-cpp-python sdist); needs pip packages torch, transformers,
  gguf, numpy."""
import os, subprocess, sys, tempfile
import numpy as np
import gguf

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
llama = sys.argv[1]
out = os.path.join(root, "tests/data/gguf")
types = {"mamba1-tiny": ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m"],
         "mamba2-tiny": ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m"],
         "mamba1-bias": ["f32"], "mamba2-groups": ["f32", "q8_0"], "falcon-mamba-tiny": ["f32"]}
models = sys.argv[2:] or list(types)  # a subset when named after LLAMA_CPP_DIR


def strip_vocab(src, dst):
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.fields["general.architecture"].contents())
    for name, f in r.fields.items():
        if name.startswith(("GGUF.", "tokenizer.")) or name == "general.architecture":
            continue
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            w.add_array(name, f.contents())
        else:
            w.add_key_value(name, f.contents(), f.types[0])
    for t in r.tensors:  # raw bytes as stored (quantized types come as byte-shaped uint8)
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


for f in ["ggml-vocab-gpt-2.gguf", "ggml-vocab-gpt-2.gguf.inp", "ggml-vocab-gpt-2.gguf.out"]:
    subprocess.run(["cp", os.path.join(llama, "models", f), out], check=True)

with tempfile.TemporaryDirectory() as tmp:
    for m in models:
        src = os.path.join(root, "tests/data/models", m, "hf")
        for t in types[m]:
            name = f"{m}-{t}"
            raw = os.path.join(tmp, name + ".gguf")
            if t in ("q4_0", "q4_k_m"):
                subprocess.run([os.path.join(llama, "build/bin/llama-quantize"), os.path.join(tmp, f"{m}-f32.gguf"), raw, t],
                               check=True, capture_output=True)
            else:
                subprocess.run([sys.executable, os.path.join(llama, "convert_hf_to_gguf.py"), src, "--outtype", t,
                                "--outfile", raw], check=True, capture_output=True)
            dst = os.path.join(out, name + ".gguf")
            strip_vocab(raw, dst)
            print(dst, os.path.getsize(dst))
