"""The Python package against the C library and the command line (run by ctest as
`python_api`; scripts/check.sh provides a virtual environment with numpy, pytest and
lm-eval). The package is imported from python/ with MAMBAC_LIBRARY and MAMBAC_CLI naming
the build's libmambac.so and mambac (tests/CMakeLists.txt sets them)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import mambac

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CLI = os.environ.get("MAMBAC_CLI", str(ROOT / "build" / "mambac"))
DEFAULT = str(ROOT / "models" / "default")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    types = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=types[v["dtype"]]).reshape(v["shape"])
    return out


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, check=check)


@pytest.fixture(scope="module")
def model() -> mambac.Model:
    return mambac.Model(DEFAULT, threads=2)


# ---- loading and information -----------------------------------------------------------


def test_info_matches_config(model):
    cfg = json.loads((Path(DEFAULT) / "config.json").read_text())
    i = model.info
    assert i.arch == "mamba" and i.d_model == cfg["hidden_size"] and i.n_layer == cfg["num_hidden_layers"]
    assert i.vocab_size == cfg["vocab_size"] and i.n_vocab_rows >= i.vocab_size
    assert i.backend == "cpu" and i.format == "safetensors" and i.state_bytes > 0
    assert mambac.Model().path == mambac.default_model_path()
    assert "arch=mamba" in repr(model)


@pytest.mark.parametrize("name", ["mamba1-tiny", "mamba2-tiny", "falcon-mamba-tiny"])
def test_logits_match_transformers_fixture(name):
    """Independent reference: transformers' logits for the fixture (tests/data/models)."""
    ref = read_safetensors(DATA / "models" / name / "ref.safetensors")
    m = mambac.Model(str(DATA / "models" / name / "hf"), threads=1)
    assert m.info.arch == {"mamba1-tiny": "mamba", "mamba2-tiny": "mamba2", "falcon-mamba-tiny": "falcon_mamba"}[name]
    got = m.logits(ref["input_ids"])
    want = ref["logits"].astype(np.float64)
    rel = np.linalg.norm(got[:, :want.shape[1]] - want) / np.linalg.norm(want)
    assert got.shape == (len(ref["input_ids"]), m.info.n_vocab_rows)
    assert rel < 1e-4, rel


def test_logits_equal_c_bit_for_bit(model, tmp_path):
    ids = [72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100]
    out = tmp_path / "l.npy"
    cli("logits", "-m", DEFAULT, "-t", "2", "--prompt-ids", ",".join(map(str, ids)), "-o", str(out))
    want = np.load(out)
    got = model.logits(ids)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got, want)
    # the last row alone takes the one-row product kernel: equal up to rounding
    assert np.allclose(model.logits(ids, last_only=True), want[-1], atol=1e-5)
    assert np.array_equal(model.logits(np.asarray(ids, dtype=np.int64)), want)


def test_gguf_and_quantize(tmp_path):
    src = str(DATA / "models" / "mamba2-tiny" / "hf")
    ref = read_safetensors(DATA / "models" / "mamba2-tiny" / "ref.safetensors")
    out = tmp_path / "m.gguf"
    seen = []
    mambac.quantize(src, out, "q8_0", progress=lambda done, total, name: seen.append((done, total, name)))
    assert out.exists() and seen and seen[-1][0] == seen[-1][1]
    q = mambac.Model(str(out), threads=1)
    assert q.info.format == "gguf" and q.info.dtype == "q8_0"
    got = q.logits(ref["input_ids"])[:, :ref["logits"].shape[1]]
    rel = np.linalg.norm(got - ref["logits"]) / np.linalg.norm(ref["logits"])
    assert rel < 5e-2, rel
    with pytest.raises(mambac.MambacInvalidArgument):
        mambac.quantize(src, tmp_path / "x.gguf", "q3_z")
    assert not (tmp_path / "x.gguf").exists()


# ---- tokenizer ---------------------------------------------------------------------------


def test_tokenizer_matches_hf_cases():
    """HF tokenizers' ids for the GPT-NeoX tokenizer (the Mamba checkpoints' own)."""
    tok = mambac.Tokenizer(str(DATA / "tokenizer" / "gpt-neox-20b-tokenizer.json"))
    cases = [json.loads(line) for line in (DATA / "tokenizer" / "cases.jsonl").read_text().splitlines() if line.strip()]
    assert len(cases) > 5
    for c in cases:
        assert tok.encode(c["text"]) == c["ids"], c["text"]
        assert tok.decode(c["ids"]) == c["decoded"]
    assert tok.find("<|endoftext|>") == 0 and tok.is_special(0)
    assert tok.token_bytes(12092) == b"Hello" and tok.token_bytes(10 ** 7) is None


def test_model_tokenizer_roundtrip(model):
    text = "O Romeo, Romeo! wherefore art thou Romeo? — ünïcödé"
    ids = model.encode(text)
    assert model.decode(ids) == text
    assert model.tokenizer.encode(b"\xff\xfe") == [255, 254]  # invalid UTF-8: byte by byte


# ---- generation ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed,temp", [(1, None), (7, "0.5"), (3, "0")])
def test_generate_equals_cli(model, seed, temp):
    args = ["generate", "-m", DEFAULT, "-t", "2", "-p", "ROMEO:", "-n", "40", "--seed", str(seed)]
    if temp is not None:
        args += ["--temp", temp]
    want = cli(*args).stdout.decode()
    got = model.generate("ROMEO:", max_tokens=40, seed=seed, temperature=None if temp is None else float(temp))
    assert got == want


def test_generate_details_stop_and_state(model):
    r = model.generate("ROMEO:", max_tokens=30, seed=5, details=True)
    assert r.finish_reason == "length" and r.n_generated == 30 and len(r.tokens) == 30 and r.n_prompt == 6
    assert model.decode(r.tokens) == r.text
    cut = r.text[5:8]
    r2 = model.generate("ROMEO:", max_tokens=30, seed=5, stop=[cut], details=True)
    assert r2.finish_reason == "stop" and cut not in r2.text and r.text.startswith(r2.text)
    # the state continues: prompt then the generated tokens (feed_last) equals one longer prompt
    s = model.state()
    r3 = model.generate("ROMEO:", max_tokens=10, temperature=0, state=s, feed_last=True, details=True)
    assert s.n_tokens == 6 + 10
    whole = model.logits(model.encode("ROMEO:") + r3.tokens, last_only=True)
    s2 = model.state()
    model.eval(model.encode("ROMEO:") + r3.tokens[:-1], s2, logits="none")
    assert np.allclose(model.logits([r3.tokens[-1]], state=s2, last_only=True), whole, atol=1e-4)


def test_stream_equals_generate_and_stops_early(model):
    want = model.generate("JULIET:", max_tokens=50, seed=11)
    pieces = list(model.stream("JULIET:", max_tokens=50, seed=11))
    assert len(pieces) > 1 and "".join(pieces) == want
    g = model.stream("JULIET:", max_tokens=100000, seed=11, ignore_eos=True)
    first = next(g)
    g.close()  # the generation stops (the worker joins); the model is usable at once
    assert first and model.generate("JULIET:", max_tokens=5, seed=1)


def test_chat_template(model):
    text = model.apply_chat_template([{"role": "user", "content": "Hi"}], template="chatml")
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert model.chat_template() == "chatml"


# ---- states ------------------------------------------------------------------------------------


def test_state_copy_save_bytes_pickle(model, tmp_path):
    s = model.state()
    model.eval("To be, or not to be", s, logits="none")
    n = s.n_tokens
    c = s.copy()
    model.eval(" that is", c, logits="none")
    assert s.n_tokens == n and c.n_tokens > n
    nxt = model.logits([32], state=s.copy(), last_only=True)
    s.save(tmp_path / "s.mcst")
    loaded = mambac.State.from_file(model, tmp_path / "s.mcst")
    restored = mambac.State.from_bytes(model, s.to_bytes())
    unpickled = pickle.loads(pickle.dumps(s))
    assert unpickled.model is model  # the live model, not a second copy
    for t in (loaded, restored, unpickled):
        assert t.n_tokens == n
        assert np.array_equal(model.logits([32], state=t, last_only=True), nxt)
    s.reset()
    assert s.n_tokens == 0


def test_prefill_in_pieces_equals_whole(model):
    ids = model.encode("Now is the winter of our discontent made glorious summer")
    whole = model.logits(ids)
    s = model.state()
    a = model.logits(ids[:20], state=s)
    b = model.logits(ids[20:], state=s)
    assert np.allclose(np.vstack([a, b]), whole, atol=1e-4)


def test_eval_batch_equals_one_by_one(model):
    prompts = [model.encode(t) for t in ("ROMEO:", "What light through yonder window", "A")]
    alone = [model.logits(p, last_only=True) for p in prompts]
    states = [model.state() for _ in prompts]
    got = model.eval_batch(list(zip(states, prompts)))
    for g, w in zip(got, alone):
        assert np.allclose(g, w, atol=1e-4)
    greedy = model.eval_batch([(st, [32]) for st in states], logits="greedy")
    assert all(isinstance(t, int) and 0 <= t < model.info.vocab_size for t in greedy)
    all_rows = model.eval_batch([(model.state(), prompts[1])], logits="all")[0]
    assert all_rows.shape == (len(prompts[1]), model.info.n_vocab_rows)


# ---- errors ------------------------------------------------------------------------------------


def test_errors_carry_the_message(model, tmp_path):
    with pytest.raises(mambac.MambacIOError, match="no-such-model"):
        mambac.Model(str(tmp_path / "no-such-model"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 60)
    with pytest.raises(mambac.MambacError):
        mambac.Model(str(bad))
    with pytest.raises(mambac.MambacInvalidArgument):
        model.logits([model.info.n_vocab_rows + 5])
    with pytest.raises(mambac.MambacInvalidArgument):
        model.logits([])
    with pytest.raises(mambac.MambacFormatError):
        mambac.State.from_bytes(model, b"not a state")
    other = mambac.Model(str(DATA / "models" / "mamba1-tiny" / "hf"), threads=1)
    with pytest.raises(mambac.MambacInvalidArgument, match="another model"):
        model.eval([1], other.state())
    with pytest.raises(mambac.MambacInvalidArgument, match="tokenizer"):
        other.generate("text")
    with pytest.raises(mambac.MambacInvalidArgument):
        model.eval_batch([(model.state(), [1])], logits="everything")
    s = other.state()
    other.close()
    with pytest.raises(mambac.MambacInvalidArgument, match="freed"):
        s.n_tokens
    with pytest.raises(mambac.MambacInvalidArgument, match="closed"):
        other.state()
    assert issubclass(mambac.MambacIOError, OSError) and issubclass(mambac.MambacFormatError, ValueError)


# ---- threads ----------------------------------------------------------------------------------


def test_threads_with_their_own_contexts(model):
    prompts = [model.encode(t) for t in ("ROMEO:", "JULIET:", "MERCUTIO:", "TYBALT:")]
    want = [model.logits(p, last_only=True) for p in prompts]
    got = [None] * len(prompts)
    errors = []

    def work(i):
        try:
            ctx = model.context(threads=1)
            for _ in range(3):
                got[i] = ctx.logits(prompts[i], last_only=True)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(prompts))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    for g, w in zip(got, want):
        assert np.array_equal(g, w)  # results do not depend on the thread count


def test_threads_sharing_the_model_context(model):
    out = [None] * 4
    ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, model.generate("ROMEO:", max_tokens=20, seed=i)))
          for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert out == [model.generate("ROMEO:", max_tokens=20, seed=i) for i in range(4)]


# ---- training and initialization ----------------------------------------------------------------


def test_train_progress_stop_and_resume(tmp_path):
    data = tmp_path / "t.txt"
    data.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    seen = []

    def progress(p):
        seen.append(p)
        return p.step == 3  # stop after step 3: a checkpoint is saved

    out = tmp_path / "run"
    mambac.train(data, out, d_model=32, n_layer=1, batch=2, seq=32, steps=50, eval_every=2, threads=1,
                 progress=progress)
    assert [p.step for p in seen] == [1, 2, 3] and seen[0].steps == 50
    assert seen[1].val_loss is not None and seen[0].val_loss is None and seen[0].train_loss > 0
    m = mambac.Model(str(out), threads=1)
    assert m.info.d_model == 32 and m.info.n_layer == 1 and m.tokenizer is not None
    seen.clear()
    mambac.train(resume=out, stop_at=5, threads=1, progress=seen.append)
    assert [p.step for p in seen] == [4, 5]
    log = (out / "log.csv").read_text().splitlines()
    assert len(log) == 1 + 5
    with pytest.raises(mambac.MambacInvalidArgument, match="unknown"):
        mambac.train(data, out, learning_rate=1)
    with pytest.raises(mambac.MambacError):
        mambac.train(tmp_path / "missing.txt", tmp_path / "run2")


def test_train_device_refused_before_writing(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    with pytest.raises(mambac.MambacError, match="cuda:99|CUDA"):
        mambac.train(data, tmp_path / "run", d_model=32, n_layer=1, batch=2, seq=32, steps=2, device="cuda:99")
    with pytest.raises(mambac.MambacInvalidArgument, match="precision"):
        mambac.train(data, tmp_path / "run", d_model=32, n_layer=1, batch=2, seq=32, steps=2, precision="bf16")
    assert not (tmp_path / "run").exists()


def test_train_ctrl_c_saves_then_raises(tmp_path):
    data = tmp_path / "t.txt"
    data.write_text("abcdefgh " * 2000)

    def progress(p):
        if p.step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: Python raises it in this callback

    with pytest.raises(KeyboardInterrupt):
        mambac.train(data, tmp_path / "run", d_model=32, n_layer=1, batch=2, seq=32, steps=50, threads=1,
                     progress=progress)
    state = json.loads((tmp_path / "run" / "train_state.json").read_text())
    assert state["step"] == 2


def test_init_model(tmp_path):
    assert "mamba2-130m" in mambac.presets()
    mambac.init_model(tmp_path / "m", arch="mamba2", d_model=64, n_layer=2, vocab_size=300, head_dim=16, d_state=16,
                      chunk_size=16, seed=3)
    m = mambac.Model(str(tmp_path / "m"), threads=1)
    assert m.info.arch == "mamba2" and m.info.d_model == 64 and m.info.vocab_size == 300
    assert np.isfinite(m.logits([1, 2, 3])).all()


# ---- the command line and the lm-eval backend ------------------------------------------------------


def test_python_dash_m_runs_the_cli():
    env = dict(os.environ, MAMBAC_CLI=CLI)
    r = subprocess.run([os.sys.executable, "-m", "mambac", "--version"], capture_output=True, env=env)
    assert r.returncode == 0 and b"mambac " in r.stdout + r.stderr


def test_lm_eval_backend_equals_mambac_eval(tmp_path):
    harness = pytest.importorskip("mambac.harness")  # lm_eval is in the check's environment
    from lm_eval.api.instance import Instance

    samples = tmp_path / "s.jsonl"
    cli("eval", "-m", DEFAULT, "-t", "2", "--task", "piqa", "--data", str(DATA / "eval"), "--limit", "4",
        "--samples", str(samples))
    want = [[float(r[0]) for r in json.loads(line)["filtered_resps"]] for line in samples.read_text().splitlines()]
    items = [json.loads(line) for line in (DATA / "eval" / "piqa" / "valid.jsonl").read_text().splitlines()[:4]]
    lm = harness.MambacLM(path=DEFAULT, threads=2, batch_size=3)
    reqs = []
    for i, it in enumerate(items):
        ctx = f"Question: {it['goal']}\nAnswer:"
        for j, sol in enumerate((it["sol1"], it["sol2"])):
            reqs.append(Instance("loglikelihood", it, (ctx, " " + sol), idx=j))
    got = lm.loglikelihood(reqs, disable_tqdm=True)
    flat = [v for row in want for v in row]
    assert len(got) == len(flat)
    for (lp, greedy), w in zip(got, flat):
        assert abs(lp - w) <= 1e-6 * max(1.0, abs(w)) and isinstance(greedy, bool)
    # rolling: the whole-document form equals the sum of the per-token log-probabilities
    text = "To be, or not to be, that is the question."
    lm.max_length = 0
    (roll,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), idx=0)], disable_tqdm=True)
    ids = [lm.eot_token_id] + lm.model.encode(text)
    lg = lm.model.logits(ids[:-1]).astype(np.float64)[:, :lm.model.info.vocab_size]
    lse = np.log(np.exp(lg - lg.max(1, keepdims=True)).sum(1)) + lg.max(1)
    assert abs(roll - float((lg[np.arange(len(ids) - 1), ids[1:]] - lse).sum())) < 1e-6
    lm.max_length = 8  # lm-eval's disjoint windows, each from a fresh state
    (win,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), idx=0)], disable_tqdm=True)
    assert win < 0 and win != roll
    (gen,) = lm.generate_until([Instance("generate_until", {}, ("ROMEO:", {"until": ["\n\n"], "max_gen_toks": 12}),
                                         idx=0)], disable_tqdm=True)
    assert gen == lm.model.generate("ROMEO:", max_tokens=12, temperature=0, stop=["\n\n"])
