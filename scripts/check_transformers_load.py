#!/usr/bin/env python3
"""Dev check: a checkpoint written by `mambac train` loads in transformers
(MambaForCausalLM / Mamba2ForCausalLM via AutoModelForCausalLM) and gives the logits
mambac gives. Needs: pip install torch transformers safetensors numpy.

Usage: python3 scripts/check_transformers_load.py CHECKPOINT_DIR [MAMBAC_BINARY]
Prints the relative L2 difference of the logits of a 64-token window (mambac's are
computed with `mambac logits`), and exits non-zero above 1e-4."""
import os, subprocess, sys, tempfile
import numpy as np
import torch
from transformers import AutoModelForCausalLM

ckpt = sys.argv[1]
binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "build", "mambac")
model = AutoModelForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32)
model.eval()
ids = list(b"ROMEO:\nWhat light through yonder window breaks? It is the east, and Juliet is")[:64]
with torch.no_grad():
    want = model(torch.tensor([ids])).logits[0].numpy()
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "l.npy")
    subprocess.run([binary, "logits", "-m", ckpt, "--prompt-ids", ",".join(map(str, ids)), "-o", out], check=True)
    got = np.load(out)[:, :want.shape[1]]
err = np.linalg.norm(got - want) / np.linalg.norm(want)
print(f"{type(model).__name__} loaded {ckpt}: logits relative L2 vs mambac {err:.3g}")
sys.exit(0 if err < 1e-4 else 1)
