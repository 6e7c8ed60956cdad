#!/usr/bin/env python3
"""Dev check: lm-evaluation-harness itself (its task machinery, its metrics) driving the
mambac backend, against `mambac eval` on the same items.

  python scripts/check_lm_eval_backend.py MAMBAC MODEL PIQA_DIR
needs: pip install ".[lm-eval]" (the full harness: datasets, evaluate, ...); no network: the
task is a local YAML over PIQA's files (valid.jsonl + valid-labels.lst in PIQA_DIR). Prints
both tables' acc / acc_norm and exits nonzero when they differ."""
import json
import os
import subprocess
import sys
import tempfile

mambac, model, piqa = sys.argv[1:4]
work = tempfile.mkdtemp()
items = [json.loads(l) for l in open(os.path.join(piqa, "piqa", "valid.jsonl"))]
labels = [int(x) for x in open(os.path.join(piqa, "piqa", "valid-labels.lst")).read().split()]
with open(os.path.join(work, "piqa.jsonl"), "w") as f:
    for it, lab in zip(items, labels):
        f.write(json.dumps(dict(it, label=lab)) + "\n")
with open(os.path.join(work, "piqa_local.yaml"), "w") as f:
    f.write(f"""task: piqa_local
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {work}/piqa.jsonl
output_type: multiple_choice
validation_split: validation
doc_to_text: "Question: {{{{goal}}}}\\nAnswer:"
doc_to_target: label
doc_to_choice: "{{{{[sol1, sol2]}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
""")
env = dict(os.environ, HF_DATASETS_OFFLINE="1")
subprocess.run([sys.executable, "-m", "mambac.harness", "run", "--model", "mambac", "--model_args",
                f"path={model},threads=2", "--tasks", "piqa_local", "--include_path", work, "--batch_size", "8",
                "--output_path", os.path.join(work, "out")], check=True, env=env, capture_output=True)
res = None
for root, _, files in os.walk(os.path.join(work, "out")):
    for n in files:
        if n.startswith("results") and n.endswith(".json"):
            res = json.load(open(os.path.join(root, n)))["results"]["piqa_local"]
ours = subprocess.run([mambac, "eval", "-m", model, "--task", "piqa", "--data", piqa, "-o", os.path.join(work, "m.json")],
                      check=True, capture_output=True)
m = json.load(open(os.path.join(work, "m.json")))["results"]["piqa"]
ok = True
for k in ("acc,none", "acc_norm,none", "acc_stderr,none", "acc_norm_stderr,none"):
    mine = m.get(k, m.get(k.split(",")[0]))  # mambac eval writes lm-eval's "metric,filter" keys or plain names
    same = abs(res[k] - mine) < 1e-12
    ok &= same
    print(f"{k:22s} lm-eval+mambac {res[k]:.6f}   mambac eval {mine:.6f}   {'equal' if same else 'DIFFERENT'}")
sys.exit(0 if ok else 1)
