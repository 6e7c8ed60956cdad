#!/usr/bin/env python3
"""bench_serve.py URL [--clients 1,8,32] [--tokens 128] [--prompt-tokens 64] [--rounds 2]

Load on an OpenAI-compatible server (mambac serve, or llama.cpp's llama-server: same
requests): C concurrent streaming clients (a process each), each sending one completion of --tokens tokens
(ignore_eos) after a prompt of about --prompt-tokens tokens, all released at once. Prints, per
client count, the aggregate generated tokens/s (all tokens over the wall time from the first
request to the last token, prompts included), the decode rate (the sum of each client's rate
after its first token), time to first token and inter-token latency percentiles (p50 /
p99), one JSON line each. Standard library only."""
import argparse
import http.client
import json
import multiprocessing as mp
import time
import urllib.parse

WORDS = ("the of and to in that it is was he for on are as with his they at be this from have or by one had not but "
         "what all were when we there can an your which their said if do will each about how up out them then she").split()


def one(url, body, out, key, go):
    go.wait()  # every client released at once
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    t0 = time.perf_counter()
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    c.request("POST", "/v1/completions", body=json.dumps(body).encode(), headers=h)
    r = c.getresponse()
    stamps, buf = [], b""
    while True:
        piece = r.read1(65536)
        if not piece:
            break
        buf += piece
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if not ev.startswith(b"data: ") or ev[6:] == b"[DONE]":
                continue
            j = json.loads(ev[6:])
            if j.get("choices") and j["choices"][0].get("text"):
                stamps.append(time.perf_counter())
    c.close()
    out.put((t0, stamps))


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--key", default=None)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    for C in [int(x) for x in a.clients.split(",")]:
        best = None
        for rnd in range(a.rounds):
            q, go, procs = mp.Queue(), mp.Event(), []
            for i in range(C):  # one process a client: a Python client must not be the limit
                prompt = " ".join(WORDS[(i * 7 + k + rnd * 13) % len(WORDS)] for k in range(a.prompt_tokens))
                body = {"prompt": prompt, "max_tokens": a.tokens, "temperature": 0, "ignore_eos": True, "stream": True,
                        "cache_prompt": False, "n_predict": a.tokens}
                procs.append(mp.Process(target=one, args=(a.url, body, q, a.key, go)))
            for p in procs:
                p.start()
            time.sleep(0.5)
            go.set()
            out = [q.get() for _ in procs]
            for p in procs:
                p.join()
            start = min(t0 for t0, _ in out)
            end = max(s[-1] for _, s in out if s)
            n = sum(len(s) for _, s in out)
            ttft = [s[0] - t0 for t0, s in out if s]
            itl = [b - a_ for _, s in out for a_, b in zip(s, s[1:])]
            # while every client decodes: the sum of the clients' own rates after their first token
            dec = sum((len(s) - 1) / (s[-1] - s[0]) for _, s in out if len(s) > 1 and s[-1] > s[0])
            res = {"label": a.label, "clients": C, "tokens": n, "agg_tok_s": n / (end - start), "decode_tok_s": dec,
                   "ttft_p50_ms": 1e3 * pct(ttft, 0.5), "ttft_p99_ms": 1e3 * pct(ttft, 0.99),
                   "itl_p50_ms": 1e3 * pct(itl, 0.5), "itl_p99_ms": 1e3 * pct(itl, 0.99)}
            if best is None or res["agg_tok_s"] > best["agg_tok_s"]:
                best = res
        print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in best.items()}), flush=True)


if __name__ == "__main__":
    main()
