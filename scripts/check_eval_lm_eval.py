#!/usr/bin/env python3
"""Dev check: `mambac eval` against lm-evaluation-harness itself (its `hf` backend: transformers
in float32 on the CPU, its tokenization, its scoring and metrics), item by item.

  python scripts/check_eval_lm_eval.py MAMBAC MODEL DATA [--limit N] [--tasks a,b] [--store FILE]

needs (a virtual environment of its own): pip install torch transformers accelerate "lm_eval==0.4.13".
No network: each task is an lm-eval task config over the same local files mambac reads
(DATA: the layout of ../shared/data/eval, or tests/data/eval), with lm-eval's prompts:
piqa, lambada_openai and hellaswag through lm-eval's own doc_to_text / process_docs; the
MosaicML-format files through small functions that restore the fields lm-eval's templates
name (written here in Python, independently of mambac's C). MODEL must load in transformers
(a folder mambac wrote). Compares every item's log-likelihoods (1e-4 relative) and every
metric (acc and acc_norm equal, their standard errors equal, perplexity 1e-4) and exits 1 on a
difference. --store writes lm-eval's per-item numbers as the reference a test keeps.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("mambac")
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("--limit", type=int, default=0)
ap.add_argument("--tasks", default="piqa,arc_easy,arc_challenge,openbookqa,winogrande,wsc273,lambada_openai,copa,boolq,"
                                    "siqa,commonsense_qa,hellaswag")
ap.add_argument("--store")
ap.add_argument("--threads", type=int, default=0, help="CPU threads of both tools (0: their defaults, every CPU)")
ap.add_argument("--hf-dtype", default="float32", help="the dtype transformers computes in (float32: exact and, on a CPU, fastest)")
args = ap.parse_args()
work = tempfile.mkdtemp()
tasks = args.tasks.split(",")

UTILS = r'''
import re
from lm_eval.tasks.hellaswag.utils import process_docs as hellaswag_process_docs  # lm-eval's own


def mc_choices(doc):
    return doc["choices"]


def mc_gold(doc):
    return doc["gold"]


def partial_index(doc):  # lm-eval's multiple-input form: doc_to_text is the gold context's index
    return doc["gold"]


def partial_contexts(doc):
    return doc["context_options"]


def partial_target(doc):
    return doc["continuation"]


def copa_text(doc):  # the file's "premise, therefore" holds lm-eval's premise[:-1] and connector
    q = doc["query"]
    for conn in ("therefore", "because"):
        if q.endswith(", " + conn):
            return q[: -len(", " + conn)] + " " + conn
    raise ValueError(q)


def copa_choices(doc):  # lm-eval's utils: " " + choice[0].lower() + choice[1:]
    return [" " + c[0].lower() + c[1:] for c in doc["choices"]]


def boolq_text(doc):  # "{{passage}}\nQuestion: {{question}}?\nAnswer:"
    return doc["query"][len("Passage: "):] + "\nAnswer:"


def siqa_fields(doc):
    m = re.match(r"Context: (.*)\nQuestion: (.*)\nChoices:\n(.*)\nAnswer:$", doc["query"], re.S)
    answers = [re.sub(r"^[A-Z]\. ", "", line) for line in m.group(3).split("\n")]
    return m.group(1), m.group(2), answers


def siqa_text(doc):  # "Q: {{context}} {{question}}\nA:"
    c, q, _ = siqa_fields(doc)
    return f"Q: {c} {q}\nA:"


def siqa_choices(doc):
    return siqa_fields(doc)[2]


def csqa_text(doc):  # "Question: ...\nA. ...\n...\nAnswer:" (the file's "Choices:" line dropped)
    return doc["query"].replace("\nChoices:\n", "\n", 1)
'''


def yaml(name, path, body):
    return f"""task: {name}_ref
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {path}
validation_split: validation
{body}"""


MC = "output_type: multiple_choice\ndoc_to_choice: !function utils.mc_choices\ndoc_to_target: !function utils.mc_gold\n"
ACC = "metric_list:\n  - metric: acc\n"
ACC2 = "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
files = {
    "piqa": "piqa/valid.jsonl", "arc_easy": "mosaic_icl/arc_easy.jsonl", "arc_challenge": "mosaic_icl/arc_challenge.jsonl",
    "openbookqa": "mosaic_icl/openbook_qa.jsonl", "winogrande": "mosaic_icl/winogrande.jsonl",
    "wsc273": "mosaic_icl/winograd_wsc.jsonl", "lambada_openai": "lambada/lambada_test.jsonl", "copa": "mosaic_icl/copa.jsonl",
    "boolq": "mosaic_icl/boolq.jsonl", "siqa": "mosaic_icl/siqa.jsonl", "commonsense_qa": "mosaic_icl/commonsense_qa.jsonl",
    "hellaswag": "hellaswag/hellaswag_val.jsonl",
}
bodies = {
    "piqa": "output_type: multiple_choice\ndoc_to_text: \"Question: {{goal}}\\nAnswer:\"\ndoc_to_target: label\n"
            "doc_to_choice: \"{{[sol1, sol2]}}\"\n" + ACC2,
    "arc_easy": MC + "doc_to_text: \"{{query}}\\nAnswer:\"\n" + ACC2,
    "arc_challenge": MC + "doc_to_text: \"{{query}}\\nAnswer:\"\n" + ACC2,
    "openbookqa": MC + "doc_to_text: \"{{query}}\"\n" + ACC2,
    "winogrande": "output_type: multiple_choice\ndoc_to_text: !function utils.partial_index\n"
                  "doc_to_target: !function utils.partial_target\ndoc_to_choice: !function utils.partial_contexts\n" + ACC,
    "wsc273": "output_type: multiple_choice\ndoc_to_text: !function utils.partial_index\n"
              "doc_to_target: !function utils.partial_target\ndoc_to_choice: !function utils.partial_contexts\n" + ACC,
    "lambada_openai": "output_type: loglikelihood\ndoc_to_text: \"{{text.split(' ')[:-1]|join(' ')}}\"\n"
                      "doc_to_target: \"{{' '+text.split(' ')[-1]}}\"\n"
                      "metric_list:\n  - metric: perplexity\n  - metric: acc\n",
    "copa": "output_type: multiple_choice\ndoc_to_text: !function utils.copa_text\n"
            "doc_to_choice: !function utils.copa_choices\ndoc_to_target: !function utils.mc_gold\n" + ACC,
    "boolq": MC + "doc_to_text: !function utils.boolq_text\n" + ACC,
    "siqa": "output_type: multiple_choice\ndoc_to_text: !function utils.siqa_text\n"
            "doc_to_choice: !function utils.siqa_choices\ndoc_to_target: !function utils.mc_gold\n" + ACC,
    "commonsense_qa": MC + "doc_to_text: !function utils.csqa_text\n" + ACC,
    "hellaswag": "output_type: multiple_choice\nprocess_docs: !function utils.hellaswag_process_docs\n"
                 "doc_to_text: \"{{query}}\"\ndoc_to_target: \"{{label}}\"\ndoc_to_choice: \"choices\"\n" + ACC2,
}
open(os.path.join(work, "utils.py"), "w").write(UTILS)
for t in tasks:
    path = os.path.join(args.data, files[t])
    if t == "piqa":  # lm-eval's piqa reads the label beside each item
        items = [json.loads(l) for l in open(path)]
        labels = open(os.path.join(os.path.dirname(path), "valid-labels.lst")).read().split()
        path = os.path.join(work, "piqa.jsonl")
        with open(path, "w") as f:
            for it, lab in zip(items, labels):
                f.write(json.dumps(dict(it, label=int(lab))) + "\n")
    open(os.path.join(work, f"{t}_ref.yaml"), "w").write(yaml(t, path, bodies[t]))

lim = ["--limit", str(args.limit)] if args.limit else []
env = dict(os.environ, HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
thr = ["-t", str(args.threads)] if args.threads else []
if args.threads:  # torch's intra-op threads
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
t0 = time.perf_counter()
subprocess.run([sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                f"pretrained={args.model},dtype={args.hf_dtype}", "--device", "cpu", "--batch_size", "8", "--tasks",
                ",".join(t + "_ref" for t in tasks), "--include_path", work, "--output_path", os.path.join(work, "lm"),
                "--log_samples", *lim], check=True, env=env)
wall_ref = time.perf_counter() - t0
ref_all = json.load(open(sorted(glob.glob(os.path.join(work, "lm", "*", "results_*.json")))[-1]))
ref_results = ref_all["results"]
ref_samples = {}
for t in tasks:
    f = sorted(glob.glob(os.path.join(work, "lm", "*", f"samples_{t}_ref_*.jsonl")))[-1]
    ref_samples[t] = {s["doc_id"]: [float(r[0]) for r in s["filtered_resps"]] if isinstance(s["filtered_resps"][0], list)
                      else [float(s["filtered_resps"][0])] for s in map(json.loads, open(f))}

mine_res, mine_samples = os.path.join(work, "m.json"), os.path.join(work, "m.jsonl")
t0 = time.perf_counter()
subprocess.run([args.mambac, "eval", "-m", args.model, "--task", ",".join(tasks), "--data", args.data, "-o", mine_res,
                "--log-samples", mine_samples, *lim, *thr], check=True, stdout=subprocess.DEVNULL)
wall_mine = time.perf_counter() - t0
mine_all = json.load(open(mine_res))
mine = mine_all["results"]
mine_ll = {}
for s in map(json.loads, open(mine_samples)):
    mine_ll.setdefault(s["task"], {})[s["doc_id"]] = [float(r[0]) for r in s["filtered_resps"]]

failures, worst = 0, 0.0
for t in tasks:
    for i, want in ref_samples[t].items():
        got = mine_ll[t][i]
        for a, b in zip(want, got):
            err = abs(a - b) / max(1.0, abs(a))
            worst = max(worst, err)
            if err > 1e-4 or len(want) != len(got):
                failures += 1
                print(f"{t} item {i}: lm-eval {want} mambac {got}")
    r, m = ref_results[t + "_ref"], mine[t]
    for k, v in r.items():
        if "," not in k or k not in m or isinstance(v, str) or isinstance(m[k], str):  # mambac: "N/A" where lm-eval bootstraps
            continue
        tol = 1e-4 * abs(v) if k.startswith("perplexity") else 1e-12
        ok = abs(m[k] - v) <= tol
        failures += not ok
        print(f"{t:15s} {k:22s} lm-eval {v:.6g}  mambac {m[k]:.6g}  {'equal' if ok else 'DIFFERENT'}")
print(f"largest relative difference of a log-likelihood: {worst:.2e}; {failures} differences")
n_items = sum(len(v) for v in ref_samples.values())
print(f"wall time of each command ({n_items} items, model loading and, for lm-eval, Python's imports included): "
      f"lm-eval hf {wall_ref:.1f} s, mambac eval {wall_mine:.1f} s: {wall_ref / wall_mine:.1f}x")
if args.store:
    json.dump({"lm_eval_version": "0.4.13", "model": os.path.basename(os.path.normpath(args.model)), "limit": args.limit,
               "loglikelihoods": {t: {str(i): v for i, v in ref_samples[t].items()} for t in tasks},
               "results": {t: ref_results[t + "_ref"] for t in tasks}}, open(args.store, "w"), indent=1)
sys.exit(1 if failures else 0)
