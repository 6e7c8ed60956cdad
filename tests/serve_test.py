#!/usr/bin/env python3
"""serve_test.py MAMBAC — `mambac serve` on loopback, with the built-in model, driven by the
standard library only (ctest; in the sanitizer build the server runs under ASan, so a leak or a
bad access at any point fails its exit status):

  - greedy completions equal `mambac generate --temp 0` for the same prompt, alone and while
    other requests run (no state crosses between sequences), streamed and not;
  - a load of concurrent clients: streaming, non-streaming, cancelled after the first chunk,
    and malformed requests on raw sockets (garbage bytes, truncated JSON, invalid UTF-8, wrong
    types, a declared body over the limit, a slow sender): every malformed one gets a 4xx,
    every good one its exact answer, the server's memory stays bounded;
  - the state cache: a chat's second turn takes its history from the cache (usage and
    /metrics say so) and answers what the same request without the cache answers;
  - a full queue answers 503 with Retry-After; --state-dir keeps the cache across a restart;
    the API key; /tokenize, /detokenize, /models,
    /health, /metrics; SIGTERM lets a running stream finish, then the server exits 0.
Prints "N passed, M failed"; exit status 1 on any failure."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

BIN = sys.argv[1]
KEY = "test-key-123"
passed = failed = 0
lock = threading.Lock()


def check(cond, what):
    global passed, failed
    with lock:
        if cond:
            passed += 1
        else:
            failed += 1
            print("FAIL:", what, flush=True)


def start_server(*extra):
    p = subprocess.Popen([BIN, "serve", "--port", "0", "--api-key", KEY, *extra], stderr=subprocess.PIPE, text=True)
    port = None
    lines = []
    t0 = time.time()
    while time.time() - t0 < 60:
        line = p.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        print("".join(lines))
        raise SystemExit("the server did not start")
    # keep reading its stderr so that it never blocks on a full pipe
    log = list(lines)
    threading.Thread(target=lambda: log.extend(iter(p.stderr.readline, "")), daemon=True).start()
    return p, port, log


def request(port, method, path, body=None, key=KEY, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    return r.status, parsed, r


def stream(port, path, body, cancel_after=None):
    """Streams a request: (status, list of chunk objects, saw [DONE])."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, body=json.dumps(body).encode(),
              headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY})
    r = c.getresponse()
    if r.status != 200:
        out = r.read()
        c.close()
        return r.status, [json.loads(out)], False
    chunks, done = [], False
    buf = b""
    while True:
        piece = r.read1(4096) if hasattr(r, "read1") else r.read(1)
        if not piece:
            break
        buf += piece
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            assert event.startswith(b"data: "), event
            data = event[6:]
            if data == b"[DONE]":
                done = True
            else:
                chunks.append(json.loads(data))
        if cancel_after is not None and len(chunks) >= cancel_after:
            c.sock.close()
            c.close()
            return 200, chunks, False
    c.close()
    return r.status, chunks, done


def stream_text(chunks, chat=False):
    out = ""
    for ch in chunks:
        for c in ch.get("choices", []):
            out += (c.get("delta", {}).get("content") or "") if chat else c.get("text", "")
    return out


def raw_exchange(port, data, slow=False):
    """Sends raw bytes (slowly: a few at a time); returns the answer's status code (0: the
    connection closed without one)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        if slow:
            for i in range(0, len(data), 7):
                s.sendall(data[i:i + 7])
                time.sleep(0.02)
        else:
            s.sendall(data)
        resp = b""
        while b"\r\n\r\n" not in resp:
            b = s.recv(65536)
            if not b:
                break
            resp += b
    except OSError:
        resp = b""
    s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", resp)
    return int(m.group(1)) if m else 0


def post_raw(path, body, key=True, length=None):
    head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
    if key:
        head += b"Authorization: Bearer " + KEY.encode() + b"\r\n"
    head += b"Content-Length: " + str(len(body) if length is None else length).encode() + b"\r\n\r\n"
    return head + body


def cli_greedy(prompt, n):
    out = subprocess.run([BIN, "generate", "-p", prompt, "-n", str(n), "--temp", "0"], capture_output=True, check=True)
    return out.stdout.decode("utf-8", "replace")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


PROMPTS = ["ROMEO:", "To be, or not", "KING HENRY:\nWhat", "First Citizen:\nBefore we proceed", "O", "JULIET:\nGood night"]
N_GEN = 24


def full_queue():
    """A full queue answers 503 with Retry-After; clients that give up cancel their requests."""
    srv, port, log = start_server("--parallel", "1", "--queue", "2")
    codes = []

    def long_req():
        try:
            st, body, r = request(port, "POST", "/v1/completions", {"prompt": "O", "max_tokens": 4096,
                                                                    "ignore_eos": True}, timeout=3)
            codes.append((st, r.getheader("Retry-After")))
        except (socket.timeout, TimeoutError, OSError):
            codes.append((0, None))  # still running when the client gave up (and so cancelled it)

    ts = [threading.Thread(target=long_req) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    busy = [c for c in codes if c[0] == 503]
    check(len(busy) >= 5 and all(ra == "1" for _, ra in busy), f"a full queue answers 503 with Retry-After ({codes})")
    deadline = time.time() + 60
    while time.time() < deadline:
        st, metrics, _ = request(port, "GET", "/metrics")
        t = metrics.decode()
        if re.search(r"^mambac_requests_running 0$", t, re.M) and re.search(r"^mambac_requests_queued 0$", t, re.M):
            break
        time.sleep(0.2)
    check(time.time() < deadline, "requests whose clients went away are dropped")
    srv.send_signal(signal.SIGTERM)
    check(srv.wait(timeout=60) == 0, "the second server exits 0")


def state_dir():
    """--state-dir: the cache written at exit and read back at the next start (a stray file
    there skipped); the restarted server answers from the saved state what it answered."""
    import tempfile
    d = tempfile.mkdtemp(prefix="mambac-serve-")
    req = {"prompt": "ROMEO: what light", "max_tokens": 8, "temperature": 0}
    srv, port, log = start_server("--state-dir", d)
    st, a, _ = request(port, "POST", "/v1/completions", req)
    srv.send_signal(signal.SIGTERM)
    check(srv.wait(timeout=60) == 0 and any(f.endswith(".mcsc") for f in os.listdir(d)), "the cache is written at exit")
    with open(os.path.join(d, "stray.mcsc"), "wb") as f:
        f.write(b"MCSC" + os.urandom(100))
    srv, port, log = start_server("--state-dir", d)
    st2, b, _ = request(port, "POST", "/v1/completions", req)
    check(st == 200 and st2 == 200 and b["usage"]["prompt_tokens_details"]["cached_tokens"] == b["usage"]["prompt_tokens"]
          and b["choices"][0]["text"] == a["choices"][0]["text"], f"a restarted server answers from the saved state ({b})")
    srv.send_signal(signal.SIGTERM)
    check(srv.wait(timeout=60) == 0, "the restarted server exits 0")
    check(any("stray.mcsc is not a cached state" in l for l in log), "a stray file in the state folder is skipped")
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    os.rmdir(d)


def main():
    expected = {p: cli_greedy(p, N_GEN) for p in PROMPTS}
    full_queue()
    state_dir()
    srv, port, log = start_server("--parallel", "4", "--queue", "64", "--max-body-mb", "1", "--max-tokens", "4096",
                                  "--timeout", "120")
    try:
        run_all(port, srv, expected)
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
            rc = -9
        check(rc == 0, f"the server exits 0 after SIGTERM (exit status {rc}; log tail: {''.join(log[-5:])})")


def run_all(port, srv, expected):
    # --- each prompt alone, greedy, equal to the CLI
    for p in PROMPTS:
        st, body, _ = request(port, "POST", "/v1/completions", {"prompt": p, "max_tokens": N_GEN, "temperature": 0})
        check(st == 200 and body["choices"][0]["text"] == expected[p],
              f"greedy completion of {p!r} equals mambac generate ({st}: {body})")
        check(st == 200 and body["usage"]["completion_tokens"] == N_GEN and body["choices"][0]["finish_reason"] == "length",
              "usage and finish_reason of a full-length completion")
    # streamed: the chunks' text is the same text, and the stream ends with [DONE]
    st, chunks, done = stream(port, "/v1/completions", {"prompt": PROMPTS[1], "max_tokens": N_GEN, "temperature": 0,
                                                         "stream": True, "stream_options": {"include_usage": True},
                                                         "cache_prompt": False})
    check(st == 200 and done and stream_text(chunks) == expected[PROMPTS[1]], "a streamed completion equals the CLI's text")
    check(chunks and "usage" in chunks[-1] and chunks[-1]["usage"]["completion_tokens"] == N_GEN,
          "the stream's last chunk carries usage when asked")

    # --- concurrent load: good requests of every kind, cancellations and malformed ones
    results = []

    def good(i):
        p = PROMPTS[i % len(PROMPTS)]
        if i % 3 == 0:
            st, chunks, done = stream(port, "/v1/completions", {"prompt": p, "max_tokens": N_GEN, "temperature": 0,
                                                                 "stream": True, "cache_prompt": i % 2 == 0})
            results.append((p, st, stream_text(chunks), done))
        else:
            st, body, _ = request(port, "POST", "/v1/completions", {"prompt": p, "max_tokens": N_GEN, "temperature": 0,
                                                                    "cache_prompt": i % 2 == 0})
            results.append((p, st, body["choices"][0]["text"] if st == 200 else body, True))

    def cancelled(i):
        st, chunks, _ = stream(port, "/v1/completions", {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 2000,
                                                          "ignore_eos": True, "stream": True}, cancel_after=2)
        check(st == 200 and len(chunks) >= 2, "a cancelled stream got its first chunks")

    bad_statuses = []

    def malformed(i):
        cases = [
            b"\x00\xff garbage \r\n\r\n",
            post_raw(b"/v1/completions", b'{"prompt": "x'),                      # truncated JSON
            post_raw(b"/v1/completions", b'{"prompt": "\xc3\x28"}'),           # invalid UTF-8
            post_raw(b"/v1/completions", b'{"prompt": [1, "a", null]}'),         # wrong types
            post_raw(b"/v1/completions", b"", length=5000000),  # over the body limit: answered before it is sent
            post_raw(b"/v1/completions", b'{"prompt": "x", "max_tokens": 2}', key=False),
            post_raw(b"/v1/chat/completions", b'{"messages": [{"role": "robot"}]}'),
        ]
        data = cases[i % len(cases)]
        st = raw_exchange(port, data, slow=i >= len(cases))  # the second round sent slowly
        bad_statuses.append((i % len(cases), st))

    threads = [threading.Thread(target=good, args=(i,)) for i in range(18)]
    threads += [threading.Thread(target=cancelled, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=malformed, args=(i,)) for i in range(14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    check(all(not t.is_alive() for t in threads), "every client of the load finished")
    for p, st, text, done in results:
        check(st == 200 and done and text == expected[p], f"under load, {p!r} gives its answer alone ({st}: {text!r})")
    check(len(results) == 18, "every good request answered")
    for case, st in bad_statuses:
        # the garbage case may be answered 400 or by closing the connection
        check((400 <= st < 500) or (case == 0 and st == 0), f"malformed request {case} refused with a 4xx (got {st})")
    check(srv.poll() is None, "the server survived the load")
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": PROMPTS[0], "max_tokens": N_GEN, "temperature": 0})
    check(st == 200 and body["choices"][0]["text"] == expected[PROMPTS[0]], "after the load, answers are unchanged")
    check(rss_kb(srv.pid) < 1024 * 1024, f"the server's memory stays bounded ({rss_kb(srv.pid)} kB)")

    # --- the state cache: the second turn of a chat takes its history from the cache
    turn1 = [{"role": "user", "content": "Who art thou?"}]
    st, b1, _ = request(port, "POST", "/v1/chat/completions", {"messages": turn1, "max_tokens": 16, "temperature": 0})
    check(st == 200 and b1["object"] == "chat.completion" and b1["choices"][0]["message"]["role"] == "assistant",
          f"a chat completion ({st}: {b1})")
    turn2 = turn1 + [{"role": "assistant", "content": b1["choices"][0]["message"]["content"]},
                     {"role": "user", "content": "Speak again."}]
    st, b2, _ = request(port, "POST", "/v1/chat/completions", {"messages": turn2, "max_tokens": 16, "temperature": 0})
    cached = b2["usage"]["prompt_tokens_details"]["cached_tokens"] if st == 200 else -1
    check(st == 200 and cached >= b1["usage"]["prompt_tokens"],
          f"the second turn starts from the cached first ({cached} of {b2['usage']['prompt_tokens']} prompt tokens)")
    st, b3, _ = request(port, "POST", "/v1/chat/completions", {"messages": turn2, "max_tokens": 16, "temperature": 0,
                                                               "cache_prompt": False})
    check(st == 200 and b3["usage"]["prompt_tokens_details"]["cached_tokens"] == 0 and
          b3["choices"][0]["message"]["content"] == b2["choices"][0]["message"]["content"],
          "the answer from a cached state equals the answer computed from scratch")
    # a prompt whose last token changed (as when re-tokenizing merges a template's last token
    # with the answer after it) still starts from the state kept 8 tokens before the end
    ids = [(i * 37 + 11) % 200 + 40 for i in range(30)]
    st, c1, _ = request(port, "POST", "/v1/completions", {"prompt": ids, "max_tokens": 1, "temperature": 0})
    st2, c2, _ = request(port, "POST", "/v1/completions", {"prompt": ids[:29] + [7, 8, 9], "max_tokens": 1, "temperature": 0})
    st3, c3, _ = request(port, "POST", "/v1/completions", {"prompt": ids[:29] + [7, 8, 9], "max_tokens": 1, "temperature": 0,
                                                           "cache_prompt": False})
    check(st == 200 and st2 == 200 and c2["usage"]["prompt_tokens_details"]["cached_tokens"] == 22 and
          st3 == 200 and c3["choices"][0]["text"] == c2["choices"][0]["text"],
          f"a changed last token: 22 of 32 prompt tokens from the checkpoint, the same answer ({c2.get('usage')})")
    st, metrics, r = request(port, "GET", "/metrics")
    text = metrics.decode() if isinstance(metrics, bytes) else str(metrics)
    m = re.search(r"^mambac_prompt_tokens_cached_total (\d+)$", text, re.M)
    check(st == 200 and m and int(m.group(1)) >= cached, "/metrics counts the cached prompt tokens")
    check("mambac_time_to_first_token_seconds_bucket" in text and "mambac_requests_cancelled_total" in text,
          "/metrics has the latency histograms and the cancellations")

    # --- the small endpoints, the key, the limits
    st, body, _ = request(port, "POST", "/tokenize", {"content": "To be, or not"})
    check(st == 200 and isinstance(body.get("tokens"), list) and body["tokens"], "/tokenize")
    st, body2, _ = request(port, "POST", "/detokenize", {"tokens": body["tokens"]})
    check(st == 200 and body2["content"] == "To be, or not", "/detokenize inverts /tokenize")
    st, body, _ = request(port, "GET", "/v1/models")
    check(st == 200 and body["data"][0]["object"] == "model", "/v1/models")
    st, body, _ = request(port, "GET", "/health", key=None)
    check(st == 200 and body["status"] == "ok", "/health needs no key")
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": "x"}, key=None)
    check(st == 401 and body["error"]["type"] == "authentication_error", "no key: 401")
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": "x"}, key=KEY + "x")
    check(st == 401, "a wrong key: 401")
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 10 ** 7})
    check(st == 400 and body["error"]["param"] == "max_tokens", "max_tokens over the limit: 400 naming the field")
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": [1, 2, 99999]})
    check(st == 400, "a prompt id outside the vocabulary: 400")
    # A declared body over the limit is refused from its headers alone (the server answers and
    # closes without reading it: a client still sending would see a broken pipe, so send none).
    head = ("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\n" % KEY).encode()
    st = raw_exchange(port, head + b"Content-Length: %d\r\n\r\n" % ((1 << 20) + 1))
    check(st == 413, "a declared body over --max-body-mb: 413 from the headers")
    # A chunked body declares no length: it is read to its end, then refused.
    big = b"x" * ((1 << 20) + 1)
    st = raw_exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))
    check(st == 413, "a chunked body over --max-body-mb: 413")
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 4, "temperature": 0,
                                                            "logprobs": 3, "unknown_field": {"a": 1}})
    lp = body["choices"][0]["logprobs"] if st == 200 else None
    check(lp and len(lp["tokens"]) == 4 and all(len(t) == 3 for t in lp["top_logprobs"]) and
          all(v <= 0 for v in lp["token_logprobs"]), "completion logprobs (unknown fields ignored)")
    check(lp and all(abs(max(t.values()) - v) < 1e-6 for t, v in zip(lp["top_logprobs"], lp["token_logprobs"])),
          "a greedy token is its own best alternative")
    # the stop string: three characters from the middle of the greedy answer (any model)
    stop = expected["ROMEO:"][N_GEN // 2:N_GEN // 2 + 3]
    cut = expected["ROMEO:"].index(stop)
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 40, "temperature": 0,
                                                            "stop": [stop]})
    check(st == 200 and body["choices"][0]["text"] == expected["ROMEO:"][:cut] and
          body["choices"][0]["finish_reason"] == "stop", f"a stop string ({stop!r}) ends the text before it")
    st, a, _ = request(port, "POST", "/v1/completions", {"prompt": "O", "max_tokens": 20, "temperature": 1.0, "seed": 7})
    st2, b, _ = request(port, "POST", "/v1/completions", {"prompt": "O", "max_tokens": 20, "temperature": 1.0, "seed": 7})
    check(st == 200 and st2 == 200 and a["choices"][0]["text"] == b["choices"][0]["text"], "the same seed, the same text")

    # --- n choices: the prompt evaluated once, each choice sampled on (seed + index)
    base = {"prompt": "O", "max_tokens": 20, "temperature": 1.0, "ignore_eos": True}
    alone = [request(port, "POST", "/v1/completions", dict(base, seed=s))[1] for s in (7, 8)]
    st, c3, _ = request(port, "POST", "/v1/completions", dict(base, seed=7, n=3))
    ch = c3.get("choices", []) if st == 200 else []
    check(st == 200 and [c["index"] for c in ch] == [0, 1, 2] and ch[0]["text"] == alone[0]["choices"][0]["text"] and
          ch[1]["text"] == alone[1]["choices"][0]["text"],
          f"n 3: three choices, choice i the text seed 7 + i gives alone ({st}: {c3})")
    check(st == 200 and c3["usage"]["prompt_tokens"] == alone[0]["usage"]["prompt_tokens"] and
          c3["usage"]["completion_tokens"] == 60, "n 3: the prompt counted once, the completion tokens of every choice")
    st, g2, _ = request(port, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello"}],
                                                               "max_tokens": 12, "temperature": 0, "n": 2})
    check(st == 200 and len(g2["choices"]) == 2 and
          g2["choices"][0]["message"]["content"] == g2["choices"][1]["message"]["content"],
          "n 2, greedy chat: two equal answers")
    st, chunks, done = stream(port, "/v1/completions", dict(base, seed=7, n=3, stream=True,
                                                            stream_options={"include_usage": True}))
    per, fins = {}, {}
    for chunk in chunks:
        for c in chunk.get("choices", []):
            per[c["index"]] = per.get(c["index"], "") + c.get("text", "")
            if c.get("finish_reason"):
                fins[c["index"]] = fins.get(c["index"], 0) + 1
    check(st == 200 and done and [per.get(i) for i in range(3)] == [c["text"] for c in ch] and fins == {0: 1, 1: 1, 2: 1},
          "n 3 streamed: each index's chunks give its choice's text and one finish, then one [DONE]")
    check(chunks and chunks[-1].get("usage", {}).get("completion_tokens") == 60, "n 3 streamed: usage of all choices")
    st, body, _ = request(port, "POST", "/v1/completions", {"prompt": "O", "n": 17})
    check(st == 400 and body["error"]["param"] == "n", "n above 16 refused")

    # --- SIGTERM: a running stream finishes, then the server exits
    out = {}

    def last_stream():
        out["r"] = stream(port, "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 300, "ignore_eos": True,
                                                     "temperature": 0, "stream": True})

    t = threading.Thread(target=last_stream)
    t.start()
    time.sleep(0.3)
    srv.send_signal(signal.SIGTERM)
    t.join(timeout=120)
    st, chunks, done = out.get("r", (0, [], False))
    finish = [c["finish_reason"] for ch in chunks for c in ch.get("choices", []) if c.get("finish_reason")]
    check(st == 200 and done and finish == ["length"], "a stream running at SIGTERM finishes")


if __name__ == "__main__":
    main()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
