#!/usr/bin/env python3
"""bench_chat_turns.py URL [--turns 10] [--words 600] [--tokens 32]

(mambac serve, or llama.cpp's llama-server: same requests.)

A chat whose history grows turn by turn on an OpenAI-compatible server: each turn adds a user
message of --words words, asks for --tokens tokens (greedy) and sends the whole history, as
chat clients do. Run once with the server's state cache and once without it (cache_prompt:
false); prints one JSON line per turn: prompt tokens, how many came from the cache, and the
turn's latency. With the cache a turn's latency follows its new tokens, not the history.
Standard library only."""
import argparse
import http.client
import json
import time
import urllib.parse

WORDS = ("the of and to in that it is was he for on are as with his they at be this from have or by one had not but "
         "what all were when we there can an your which their said if do will each about how up out them then she").split()


def post(url, body, key):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=h)
    r = c.getresponse()
    out = json.loads(r.read())
    c.close()
    return time.perf_counter() - t0, out


def cached_of(out):
    """Prompt tokens the server took from its cache: OpenAI's usage field, or llama-server's
    timings.cache_n where the usage lacks it."""
    d = out["usage"].get("prompt_tokens_details") or {}
    return d["cached_tokens"] if "cached_tokens" in d else (out.get("timings") or {}).get("cache_n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--words", type=int, default=600)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--key", default=None)
    a = ap.parse_args()
    for cache in (True, False):
        msgs = []
        for t in range(a.turns):
            text = " ".join(WORDS[(t * 31 + k * 7) % len(WORDS)] for k in range(a.words))
            msgs.append({"role": "user", "content": text})
            dt, out = post(a.url, {"messages": msgs, "max_tokens": a.tokens, "temperature": 0, "cache_prompt": cache},
                           a.key)
            u = out["usage"]
            print(json.dumps({"cache": cache, "turn": t + 1, "prompt_tokens": u["prompt_tokens"],
                              "cached_tokens": cached_of(out),
                              "latency_ms": round(1e3 * dt, 1)}), flush=True)
            msgs.append({"role": "assistant", "content": out["choices"][0]["message"]["content"]})


if __name__ == "__main__":
    main()
