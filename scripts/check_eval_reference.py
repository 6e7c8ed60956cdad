#!/usr/bin/env python3
"""Dev-only check of `mambac eval` against an independent implementation of
lm-evaluation-harness's scoring (its HF backend's semantics, written here from its
documentation and source: _encode_pair's whitespace move, continuation tokens taken past the
context's in the encoding of both, an empty context as the end-of-text token, log-softmax
over the model's logits, acc / acc_norm by numpy's first argmax, acc_norm dividing by the
choice's length in characters, perplexity as exp(-mean), standard errors as sample stddev /
sqrt(n)).

Tokens come from Hugging Face `tokenizers` (not mambac's tokenizer), and every request is
scored from one fresh evaluation of context + continuation (`mambac logits`, whose logits the
parity tests hold to transformers in float64) instead of mambac eval's copies of a context
state. Compares every item's log-likelihoods and every metric, and the perplexity task (lm-eval's
rolling windows, get_rolling_token_windows + make_disjoint_window, written out here) on a
document of the LAMBADA texts, in windows of 256 and whole.

  python3 scripts/check_eval_reference.py MAMBAC MODEL_DIR DATA_DIR [LIMIT]
needs: pip install tokenizers numpy
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from tokenizers import Tokenizer

mambac, model, data = sys.argv[1:4]
limit = int(sys.argv[4]) if len(sys.argv) > 4 else 20
tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
config = json.load(open(os.path.join(model, "config.json")))
vocab = config["vocab_size"]
eos = config.get("eos_token_id", 0)
work = tempfile.mkdtemp()


def encode(s):
    return tok.encode(s, add_special_tokens=False).ids


def loglikelihood(context, continuation):
    if context == "":
        ctx, cont = [eos], encode(continuation)
    else:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole, ctx = encode(context + continuation), encode(context)
        cont = whole[len(ctx):]
    ids = ctx + cont
    out = os.path.join(work, "l.npy")
    subprocess.run([mambac, "logits", "-m", model, "--prompt-ids", ",".join(map(str, ids)), "-o", out],
                   check=True, stdout=subprocess.DEVNULL)
    logits = np.load(out).astype(np.float64)[:, :vocab]
    total, greedy = 0.0, True
    for k, t in enumerate(cont):
        row = logits[len(ctx) - 1 + k]
        m = row.max()
        total += row[t] - m - math.log(np.exp(row - m).sum())
        greedy &= int(np.argmax(row)) == t
    return total, greedy


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()][:limit]


def tasks():
    piqa = lines(os.path.join(data, "piqa/valid.jsonl"))
    labels = [int(l) for l in open(os.path.join(data, "piqa/valid-labels.lst")).read().split()]
    yield "piqa", "choice", [("Question: " + d["goal"] + "\nAnswer:", [d["sol1"], d["sol2"]], labels[i])
                             for i, d in enumerate(piqa)]
    for name, suffix in (("arc_easy", "\nAnswer:"), ("openbook_qa", "")):
        yield ("openbookqa" if name == "openbook_qa" else name), "choice", [
            (d["query"] + suffix, d["choices"], d["gold"]) for d in lines(os.path.join(data, "mosaic_icl", name + ".jsonl"))]
    yield "winogrande", "partial", [(d["context_options"], d["continuation"], d["gold"])
                                    for d in lines(os.path.join(data, "mosaic_icl/winogrande.jsonl"))]
    lam = lines(os.path.join(data, "lambada/lambada_test.jsonl"))
    yield "lambada_openai", "loglik", [(" ".join(d["text"].split(" ")[:-1]), " " + d["text"].split(" ")[-1]) for d in lam]


def stderr(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


names = "piqa,arc_easy,openbookqa,winogrande,lambada_openai"
res_path, samples_path = os.path.join(work, "res.json"), os.path.join(work, "samples.jsonl")
subprocess.run([mambac, "eval", "-m", model, "--task", names, "--data", data, "--limit", str(limit), "-o", res_path,
                "--log-samples", samples_path], check=True, stdout=subprocess.DEVNULL)
got = json.load(open(res_path))["results"]
samples = {}
for l in open(samples_path):
    s = json.loads(l)
    samples[(s["task"], s["doc_id"])] = s
worst, failures = 0.0, 0
for name, kind, items in tasks():
    acc, acc_norm, lls = [], [], []
    for i, it in enumerate(items):
        if kind == "choice":
            context, choices, gold = it
            scores = [loglikelihood(context, " " + c)[0] for c in choices]
            norm = [s / len(c) for s, c in zip(scores, choices)]
            acc.append(int(np.argmax(scores)) == gold)
            acc_norm.append(int(np.argmax(norm)) == gold)
        elif kind == "partial":
            contexts, cont, gold = it
            scores = [loglikelihood(c, " " + cont)[0] for c in contexts]
            acc.append(int(np.argmax(scores)) == gold)
        else:
            ll, greedy = loglikelihood(*it)
            scores = [ll]
            lls.append(ll)
            acc.append(greedy)
        mine = [float(r[0]) for r in samples[(name, i)]["filtered_resps"]]
        for a, b in zip(scores, mine):
            err = abs(a - b) / (1 + abs(a))
            worst = max(worst, err)
            if err > 1e-4:
                failures += 1
                print(f"{name} item {i}: reference {a:.8f}, mambac {b:.8f}")
    want = {"acc": float(np.mean(acc)), "acc_stderr": stderr(acc)}
    if kind == "choice":
        want.update(acc_norm=float(np.mean(acc_norm)), acc_norm_stderr=stderr(acc_norm))
    if kind == "loglik":
        want["perplexity"] = math.exp(-float(np.mean(lls)))
    for k, v in want.items():
        g = got[name][k + ",none"]  # lm-eval's "metric,filter" keys
        ok = abs(g - v) <= 1e-9 * max(1.0, abs(v)) if k != "perplexity" else abs(g - v) <= 1e-4 * abs(v)
        print(f"{name:15s} {k:16s} reference {v:.6g}  mambac {g:.6g}  {'ok' if ok else 'DIFFERENT'}")
        failures += not ok


def rolling_windows(tokens, prefix, max_len):
    """lm-eval's get_rolling_token_windows(context_len=1), then make_disjoint_window."""
    pred_len, predicted = max_len, 0
    first = min(max_len, len(tokens))
    windows = [([prefix] + tokens[:first - 1], tokens[:first])]
    predicted += first
    while predicted < len(tokens):
        n = min(len(tokens) - predicted, pred_len)
        end = predicted + n
        windows.append((tokens[end - max_len - 1:end - 1], tokens[end - n:end]))
        predicted += n
    return [(a[:len(a) - (len(b) - 1)], b) for a, b in windows]


doc_path = os.path.join(work, "doc.txt")
with open(doc_path, "w") as f:  # a document of a few windows, lambada's text
    f.write("\n\n".join(d["text"] for d in lines(os.path.join(data, "lambada/lambada_test.jsonl"))))
doc = open(doc_path).read()
for ctx_len in (256, 0):
    ll = 0.0
    tokens = encode(doc)
    for a, b in rolling_windows(tokens, eos, ctx_len if ctx_len else len(tokens)):
        ids = (a + b)[:-1]
        out = os.path.join(work, "w.npy")
        subprocess.run([mambac, "logits", "-m", model, "--prompt-ids", ",".join(map(str, ids)), "-o", out],
                       check=True, stdout=subprocess.DEVNULL)
        logits = np.load(out).astype(np.float64)[:, :vocab]
        for k, t in enumerate(b):
            row = logits[len(a) - 1 + k]
            m = row.max()
            ll += row[t] - m - math.log(np.exp(row - m).sum())
    words, nbytes = len(__import__("re").split(r"\s+", doc)), len(doc.encode("utf-8"))
    want = {"word_perplexity": math.exp(-ll / words), "byte_perplexity": math.exp(-ll / nbytes),
            "bits_per_byte": -ll / nbytes / math.log(2), "token_perplexity": math.exp(-ll / len(tokens))}
    subprocess.run([mambac, "eval", "-m", model, "--task", "perplexity", "--data", doc_path, "--ctx", str(ctx_len),
                    "-o", res_path], check=True, stdout=subprocess.DEVNULL)
    got = json.load(open(res_path))["results"]["perplexity"]
    for k, v in want.items():
        ok = abs(got[k] - v) <= 1e-5 * abs(v)
        print(f"perplexity ctx {ctx_len:<5d} {k:16s} reference {v:.6g}  mambac {got[k]:.6g}  {'ok' if ok else 'DIFFERENT'}")
        failures += not ok
print(f"largest relative log-likelihood difference: {worst:.2e}")
print("check: passed" if failures == 0 else f"check: {failures} differences")
sys.exit(1 if failures else 0)
