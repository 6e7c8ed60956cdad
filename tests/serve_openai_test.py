#!/usr/bin/env python3
"""serve_openai_test.py MAMBAC — the official `openai` Python client (PyPI; installed into the
test virtual environment by scripts/check.sh) against `mambac serve`: completions and chat,
streaming and not, logprobs, the models list, and an error surfacing as the client's
BadRequestError. Greedy texts must equal `mambac generate --temp 0`."""
import re
import signal
import subprocess
import sys
import threading

import openai

BIN = sys.argv[1]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


srv = subprocess.Popen([BIN, "serve", "--port", "0", "--api-key", "sk-test"], stderr=subprocess.PIPE, text=True)
port = None
for line in srv.stderr:
    m = re.search(r"listening on http://[^:]+:(\d+)", line)
    if m:
        port = int(m.group(1))
        break
threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
try:
    want = subprocess.run([BIN, "generate", "-p", "ROMEO:", "-n", "16", "--temp", "0"], capture_output=True,
                          check=True).stdout.decode()
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
    r = c.completions.create(model="default", prompt="ROMEO:", max_tokens=16, temperature=0)
    check(r.choices[0].text == want and r.usage.completion_tokens == 16, f"completions: {r.choices[0].text!r}")
    s = c.completions.create(model="default", prompt="ROMEO:", max_tokens=16, temperature=0, stream=True)
    check("".join(ch.choices[0].text for ch in s if ch.choices) == want, "completions, streamed")
    msgs = [{"role": "user", "content": "Hello"}]
    r = c.chat.completions.create(model="default", messages=msgs, max_tokens=12, temperature=0)
    answer = r.choices[0].message.content
    check(r.choices[0].message.role == "assistant" and answer and r.choices[0].finish_reason in ("stop", "length"),
          "chat completions")
    s = c.chat.completions.create(model="default", messages=msgs, max_tokens=12, temperature=0, stream=True,
                                  stream_options={"include_usage": True})
    text, usage = "", None
    for ch in s:
        if ch.choices and ch.choices[0].delta.content:
            text += ch.choices[0].delta.content
        if ch.usage:
            usage = ch.usage
    check(text == answer, "chat, streamed, equals chat")
    check(usage and usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens,
          "the repeated chat's prompt came from the cache")
    r = c.chat.completions.create(model="default", messages=msgs, max_tokens=3, temperature=0, logprobs=True,
                                  top_logprobs=2)
    lp = r.choices[0].logprobs.content
    check(len(lp) == 3 and all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in lp), "chat logprobs")
    check([m.id for m in c.models.list()] == ["default"], "models list")
    try:
        c.completions.create(model="default", prompt="x", extra_body={"temperature": "hot"})
        check(False, "a bad parameter is refused")
    except openai.BadRequestError as e:
        check("temperature" in str(e), "a bad parameter surfaces as BadRequestError naming it")
    try:
        openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
        check(False, "a wrong key is refused")
    except openai.AuthenticationError:
        check(True, "a wrong key surfaces as AuthenticationError")
finally:
    srv.send_signal(signal.SIGTERM)
    check(srv.wait(timeout=60) == 0, "the server exits 0")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
