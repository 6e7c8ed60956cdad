"""`mambac eval`'s task prompts against lm-evaluation-harness's, its logged samples and
results in lm-eval's shapes, and bad task files (ctest python_api runs this file too)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "eval"
CLI = os.environ.get("MAMBAC_CLI", str(ROOT / "build" / "mambac"))


def run_eval(tmp_path, tasks, *extra, data=DATA):
    samples, results = tmp_path / "s.jsonl", tmp_path / "r.json"
    subprocess.run([CLI, "eval", "-t", "2", "--task", tasks, "--data", str(data), "--log-samples", str(samples),
                    "-o", str(results), *extra], check=True, capture_output=True)
    lines = [json.loads(l) for l in samples.read_text().splitlines()]
    return lines, json.loads(results.read_text())


def prompts(sample):
    a = sample["arguments"]
    return [(a[f"gen_args_{k}"]["arg_0"], a[f"gen_args_{k}"]["arg_1"]) for k in range(len(a))]


def test_hellaswag_prompts_are_lm_evals(tmp_path):
    """The expected strings came from lm-eval's own hellaswag process_docs (v0.4.13) over the
    same hand-made items: [title] / [header] artifacts, double spaces, ctx_b.capitalize()."""
    want = json.loads((DATA / "hellaswag" / "lm_eval_prompts.json").read_text())["items"]
    got, _ = run_eval(tmp_path, "hellaswag")
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert prompts(g) == [(w["query"], " " + c) for c in w["choices"]]
        assert int(g["target"]) == w["gold"]


def test_prompts_follow_lm_evals_task_templates(tmp_path):
    got, _ = run_eval(tmp_path, "copa,boolq,siqa,commonsense_qa", "--limit", "1")
    by_task = {g["task"]: prompts(g) for g in got}
    # copa: utils.doc_to_text premise[:-1] + " therefore"; choices " " + choice after the " " delimiter
    assert by_task["copa"] == [("The man turned on the faucet therefore", "  the toilet filled with water."),
                               ("The man turned on the faucet therefore", "  water flowed from the spout.")]
    # boolq: "{{passage}}\nQuestion: {{question}}?\nAnswer:" -> " no", " yes"
    ctx, cont = by_task["boolq"][0]
    assert ctx.startswith("All biomass goes through") and ctx.endswith("\nQuestion: does ethanol take more energy make that produces?\nAnswer:")
    assert [c for _, c in by_task["boolq"]] == [" no", " yes"]
    # siqa: "Q: {{context}} {{question}}\nA:" -> the answers' texts
    assert by_task["siqa"] == [("Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before this?\nA:", " make a new plan"),
                               ("Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before this?\nA:", " Find somewhere to go")]
    # commonsense_qa: "Question: ...\nA. ...\nAnswer:" -> " A", " B", ...
    ctx = by_task["commonsense_qa"][0][0]
    assert ctx == ("Question: A revolving door is convenient for two direction travel, but it also serves as a security "
                   "measure at a what?\nA. bank\nB. department store\nC. mall\nD. new york\nAnswer:")
    assert [c for _, c in by_task["commonsense_qa"]] == [" A", " B", " C", " D"]


def test_samples_and_results_in_lm_evals_shape(tmp_path):
    got, res = run_eval(tmp_path, "piqa,lambada_openai,winogrande", "--limit", "3")
    piqa = [g for g in got if g["task"] == "piqa"]
    assert [g["doc_id"] for g in piqa] == [0, 1, 2]
    for g in piqa:
        assert g["filter"] == "none" and g["metrics"] == ["acc", "acc_norm"] and g["doc"]["goal"]
        assert [r[0] for r in g["resps"]] == g["filtered_resps"]
        lls = [float(r[0]) for r in g["filtered_resps"]]
        assert all(repr(v) == r[0] for v, r in zip(lls, g["filtered_resps"]))  # Python's str(float)
        assert all(r[1] in ("True", "False") for r in g["filtered_resps"])
        assert g["acc"] == float(max(range(2), key=lambda k: (lls[k], -k)) == int(g["target"]))
    lam = [g for g in got if g["task"] == "lambada_openai"][0]
    assert lam["metrics"] == ["perplexity", "acc"] and lam["target"] == lam["arguments"]["gen_args_0"]["arg_1"]
    wino = [g for g in got if g["task"] == "winogrande"][0]
    assert len({a for a, _ in prompts(wino)}) == 2 and len({c for _, c in prompts(wino)}) == 1  # partial scoring
    r = res["results"]
    assert r["piqa"]["alias"] == "piqa" and set(r["piqa"]) >= {"acc,none", "acc_stderr,none", "acc_norm,none", "acc_norm_stderr,none"}
    assert "acc_norm,none" not in r["winogrande"] and r["lambada_openai"]["perplexity_stderr,none"] == "N/A"
    assert res["n-samples"]["piqa"] == {"original": 8, "effective": 3} and res["n-shot"]["piqa"] == 0
    assert res["higher_is_better"]["lambada_openai"] == {"perplexity": False, "acc": True}
    assert res["config"]["model"] == "mambac" and res["config"]["limit"] == 3
    acc = sum(g["acc"] for g in piqa) / 3
    assert abs(r["piqa"]["acc,none"] - acc) < 1e-12


@pytest.mark.parametrize("task,line,message", [
    ("hellaswag", '{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["x", "y"], "label": "2"}',
     "line 2: 'label' is not the index of an ending"),
    ("copa", '{"query": "The man left.", "choices": ["a", "b"], "gold": 0}', "line 2: a COPA query ends with"),
    ("siqa", '{"query": "Context: c\\nQuestion: q\\nChoices:\\nA. x\\nAnswer:", "choices": ["A", "B"], "gold": 0}',
     "line 2: the query lists another number of answers"),
    ("boolq", '{"query": "no passage here", "choices": ["no", "yes"], "gold": 1}', "line 2: a BoolQ query starts with"),
])
def test_bad_task_files_name_the_line(tmp_path, task, line, message):
    src = {"hellaswag": "hellaswag/hellaswag_val.jsonl", "copa": "mosaic_icl/copa.jsonl", "siqa": "mosaic_icl/siqa.jsonl",
           "boolq": "mosaic_icl/boolq.jsonl"}[task]
    dst = tmp_path / "data" / src
    dst.parent.mkdir(parents=True)
    first = (DATA / src).read_text().splitlines()[0]
    dst.write_text(first + "\n" + line + "\n")
    r = subprocess.run([CLI, "eval", "--task", task, "--data", str(tmp_path / "data"), "-o", str(tmp_path / "r.json")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and message in r.stderr and str(dst) in r.stderr
    assert not (tmp_path / "r.json").exists()


def test_equal_to_lm_eval_itself(tmp_path):
    """lm-eval 0.4.13's own numbers (its hf backend: transformers in float32 on the CPU, its
    tokenizer, its scoring) for the embedded default model on every test item of all twelve
    tasks, stored by `scripts/check_eval_lm_eval.py --store`: each item's log-likelihoods
    within 1e-4 (relative), every metric equal (perplexity within 1e-4)."""
    ref = json.loads((DATA / "lm_eval_reference.json").read_text())
    tasks = list(ref["loglikelihoods"])
    assert len(tasks) == 12
    got, res = run_eval(tmp_path, ",".join(tasks))
    mine = {}
    for g in got:
        mine.setdefault(g["task"], {})[str(g["doc_id"])] = [float(r[0]) for r in g["filtered_resps"]]
    for t in tasks:
        assert mine[t].keys() == ref["loglikelihoods"][t].keys()
        for i, want in ref["loglikelihoods"][t].items():
            assert len(mine[t][i]) == len(want)
            for a, b in zip(want, mine[t][i]):
                assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (t, i, a, b)
        for k, v in ref["results"][t].items():
            if "," not in k or isinstance(v, str) or isinstance(res["results"][t].get(k), str):
                continue
            tol = 1e-4 * abs(v) if k.startswith("perplexity") else 1e-12
            assert abs(res["results"][t][k] - v) <= tol, (t, k, v, res["results"][t][k])


def test_scoring_rules_on_hand_made_items(tmp_path):
    """acc: the first of equal best log-likelihoods (numpy's argmax); acc_norm: the best
    log-likelihood per character of the choice; an empty choice (the continuation is the
    delimiter alone), a very long one, identical choices (a tie), a context whose last
    space moves into the continuation."""
    long_choice = "and then " * 600
    items = [
        {"query": "Q: the sky is", "choices": ["blue", "blue"], "gold": 1},               # a tie: the first wins
        {"query": "Q: pick one", "choices": ["", "x", "yy"], "gold": 0},                  # an empty choice
        {"query": "Once upon a time", "choices": [long_choice, "there"], "gold": 1},      # 5400 characters
        {"query": "Trailing space ", "choices": ["a", "bb"], "gold": 0},
        {"query": "Norm:", "choices": ["a", "a much longer choice than the first"], "gold": 1},
    ]
    task = tmp_path / "hand.jsonl"
    task.write_text("".join(json.dumps(i) + "\n" for i in items))
    samples, results = tmp_path / "s.jsonl", tmp_path / "r.json"
    subprocess.run([CLI, "eval", "--task", f"jsonl:{task}", "--log-samples", str(samples), "-o", str(results)],
                   check=True, capture_output=True)
    got = [json.loads(l) for l in samples.read_text().splitlines()]
    assert len(got) == len(items)
    hits, norm_hits = [], []
    for it, g in zip(items, got):
        lls = [float(r[0]) for r in g["filtered_resps"]]
        assert all(v <= 0 for v in lls)
        best = max(range(len(lls)), key=lambda k: (lls[k], -k))  # first of equal maxima
        norm = [v / len(c) if c else float("-inf") if v < 0 else 0.0 for v, c in zip(lls, it["choices"])]
        best_norm = max(range(len(norm)), key=lambda k: (norm[k], -k))
        assert g["acc"] == float(best == it["gold"])
        if it["choices"][0]:  # lm-eval divides by the length: an empty choice's division is not defined
            assert g["acc_norm"] == float(best_norm == it["gold"])
        hits.append(g["acc"])
        norm_hits.append(g["acc_norm"])
    tie = got[0]
    assert tie["filtered_resps"][0][0] == tie["filtered_resps"][1][0] and tie["acc"] == 0.0  # gold 1 loses the tie
    ctx, cont = tie["arguments"]["gen_args_0"]["arg_0"], tie["arguments"]["gen_args_0"]["arg_1"]
    assert (ctx, cont) == ("Q: the sky is", " blue")
    assert got[1]["arguments"]["gen_args_0"]["arg_1"] == " "  # the delimiter alone
    assert got[3]["arguments"]["gen_args_0"]["arg_0"] == "Trailing space "  # logged as given; scored with the space moved
    r = json.loads(results.read_text())["results"][f"jsonl:{task}"]
    assert abs(r["acc,none"] - sum(hits) / len(hits)) < 1e-12
    assert abs(r["acc_norm,none"] - sum(norm_hits) / len(norm_hits)) < 1e-12
