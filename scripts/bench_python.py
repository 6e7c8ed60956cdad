#!/usr/bin/env python3
"""Dev benchmark: the Python package's overhead, and generation against llama-cpp-python.

Usage: python scripts/bench_python.py MAMBAC_CLI THREADS [--rounds N] [--llama] MODEL...
(run with the package importable: installed, or PYTHONPATH=python MAMBAC_LIBRARY=...).
For each model, N interleaved rounds (default 3) of:
  C      `mambac bench -p 16 -n 256 -r 1 --json`: decode steps in C (greedy on the library side)
  py-g   the same steps from Python: Context.eval([t], state, "greedy"), t fed back
  py-l   a user's loop: Context.eval([t], state, "last") -> numpy argmax -> t
  gen    Model.generate(16-token prompt, 256 tokens, greedy, ignore_eos): the C loop
  llama  (--llama, GGUF files) llama-cpp-python's Llama.generate on the same file, greedy
Reports the best round of each (the machine is shared) as tokens/s, and the per-step cost
of Python (py-g vs C) in microseconds. Also the bare cost of one ctypes call."""
import json
import subprocess
import sys
import time

import numpy as np

import mambac
from mambac import _lib

args = sys.argv[1:]
rounds, llama = 3, False
if "--rounds" in args:
    i = args.index("--rounds")
    rounds = int(args[i + 1])
    del args[i:i + 2]
if "--llama" in args:
    args.remove("--llama")
    llama = True
cli, threads, models = args[0], int(args[1]), args[2:]
N, P = 256, 16


def c_bench(path):
    out = subprocess.run([cli, "bench", "-m", path, "-p", str(P), "-n", str(N), "-t", str(threads), "-r", "1", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])["decode_tok_s"]


def py_loop(m, mode):
    ctx = m.default_context
    s = m.state()
    ctx.eval(list(range(1, P + 1)), s, "none")
    t = 1
    t0 = time.perf_counter()
    for _ in range(N):
        r = ctx.eval([t], s, mode)
        t = r if mode == "greedy" else int(np.argmax(r[: m.info.vocab_size]))
    return N / (time.perf_counter() - t0)


def py_generate(m):
    r = m.generate(list(range(1, P + 1)), max_tokens=N, temperature=0, ignore_eos=True, details=True)
    return r.n_generated / r.decode_seconds


def llama_generate(llm):
    toks = list(range(1, P + 1))
    llm.reset()
    t0, n = None, 0
    for _ in llm.generate(toks, top_k=1, temp=0.0, reset=True):
        if t0 is None:
            t0 = time.perf_counter()  # the first token ends the prompt: time decode steps only
        n += 1
        if n == N + 1:
            break
    return N / (time.perf_counter() - t0)


def call_overhead():
    s = mambac.Model(threads=1).state()
    f = _lib.lib.mambac_state_n_tokens
    h = s._h
    k = 200000
    t0 = time.perf_counter()
    for _ in range(k):
        f(h)
    return (time.perf_counter() - t0) / k * 1e6


print(f"one bare ctypes call (mambac_state_n_tokens): {call_overhead():.2f} us")
print("| model | C decode | py greedy | py logits+argmax | generate | llama-cpp-python | Python cost/step |")
print("|---|---|---|---|---|---|---|")
for path in models:
    m = mambac.Model(path, threads=threads)
    llm = None
    if llama and path.endswith(".gguf"):
        from llama_cpp import Llama

        llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=1024, n_batch=512, verbose=False)
    best = {k: 0.0 for k in ("c", "g", "l", "gen", "llama")}
    for _ in range(rounds):
        best["c"] = max(best["c"], c_bench(path))
        best["g"] = max(best["g"], py_loop(m, "greedy"))
        best["l"] = max(best["l"], py_loop(m, "last"))
        best["gen"] = max(best["gen"], py_generate(m))
        if llm is not None:
            best["llama"] = max(best["llama"], llama_generate(llm))
    cost = (1 / best["g"] - 1 / best["c"]) * 1e6
    lt = f"{best['llama']:.1f}" if llm is not None else "-"
    name = path.rstrip("/").rsplit("/", 1)[-1]
    print(f"| {name} | {best['c']:.1f} | {best['g']:.1f} | {best['l']:.1f} | {best['gen']:.1f} | {lt} | {cost:.1f} us |",
          flush=True)
    m.close()

# Per-step cost of the Python layer, measured where the C work is smallest: the mamba1-tiny
# fixture (d_model 64, 2 layers), best of 20 repeats of 500 steps, one thread: a Python loop
# of Context.eval against Model.generate's C loop over the same steps.
tiny = mambac.Model(str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests/data/models/mamba1-tiny/hf"),
                    threads=1)
ctx, steps = tiny.default_context, 500


def loop(mode):
    s = tiny.state()
    ctx.eval([1, 2, 3], s, "none")
    t0 = time.perf_counter()
    for _ in range(steps):
        ctx.eval([5], s, mode)
    return (time.perf_counter() - t0) / steps


def c_loop():
    r = tiny.generate([1, 2, 3], max_tokens=steps, temperature=0, ignore_eos=True, details=True)
    return r.decode_seconds / (r.n_generated - 1)  # the last token is not fed


best = {"greedy": 1.0, "last": 1.0, "c": 1.0}
for _ in range(20):
    best["greedy"] = min(best["greedy"], loop("greedy"))
    best["last"] = min(best["last"], loop("last"))
    best["c"] = min(best["c"], c_loop())
print(f"mamba1-tiny step: C loop {best['c'] * 1e6:.1f} us; from Python eval(greedy) {best['greedy'] * 1e6:.1f} us "
      f"(+{(best['greedy'] - best['c']) * 1e6:.1f}), eval(last) {best['last'] * 1e6:.1f} us (+{(best['last'] - best['c']) * 1e6:.1f})")
