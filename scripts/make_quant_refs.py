#!/usr/bin/env python3
"""Reference data for tests/test_quant.c, made with the `gguf` package (llama.cpp's own
Python implementation of the ggml block formats), independent of mambac's C code.

Writes tests/data/quant/refs.safetensors with
  x                  float32 values to quantize (varied block scales, zeros, outliers)
  {q8_0,q4_0}.q      gguf's quantization of x (bytes)
  {T}.blocks         random valid blocks of type T (bytes), T in q8_0 q4_0 q5_0 q4_K q6_K
  {T}.deq            gguf's dequantization of those blocks (float32)
Usage: python3 scripts/make_quant_refs.py [OUT]   (needs: pip install gguf numpy safetensors)"""
import sys
import numpy as np
from gguf import quants, GGMLQuantizationType as Q
from safetensors.numpy import save_file

rng = np.random.default_rng(1234)
n = 8192
x = rng.standard_normal(n).astype(np.float32) * np.repeat(np.exp(rng.uniform(-6, 3, n // 32)), 32).astype(np.float32)
x[64:96] = 0                       # an all-zero block
x[1000] = 50.0                     # an outlier
x[2048:2304] = np.abs(x[2048:2304])  # a positive-only super-block (q4_K min = 0)
out = {"x": x}
for name, t in [("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0)]:
    out[name + ".q"] = quants.quantize(x, t).reshape(-1)

# (type, block values, block bytes, offsets of f16 fields)
layouts = [("q8_0", Q.Q8_0, 32, 34, [0]), ("q4_0", Q.Q4_0, 32, 18, [0]), ("q5_0", Q.Q5_0, 32, 22, [0]),
           ("q4_K", Q.Q4_K, 256, 144, [0, 2]), ("q6_K", Q.Q6_K, 256, 210, [208])]
for name, t, bs, bb, f16s in layouts:
    nb = 64
    blocks = rng.integers(0, 256, size=(nb, bb), dtype=np.uint8)
    for off in f16s:
        blocks[:, off:off + 2] = (rng.standard_normal(nb) * 0.05).astype(np.float16).view(np.uint8).reshape(nb, 2)
    out[name + ".blocks"] = blocks.reshape(-1)
    out[name + ".deq"] = quants.dequantize(blocks.reshape(-1), t).astype(np.float32).reshape(-1)
    assert out[name + ".deq"].size == nb * bs

save_file(out, sys.argv[1] if len(sys.argv) > 1 else "tests/data/quant/refs.safetensors")
