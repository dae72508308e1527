"""Checks `ablab serve` with the real `openai` Python client (and raw HTTP for malformed requests).

Run by Tests/ServingTests/ServeTests.swift; prints one JSON object {check: [ok, detail]} on stdout.
Modes:
  main     chat + completions, streaming, logprobs, stop, seeded sampling, 16 concurrent clients whose
           answers must equal `ablab generate`, while bad requests are sent alongside
  answers  16 concurrent clients only (e.g. an abliterated system)
  drain    a streaming request is running when the server gets SIGINT: it must finish
"""
import argparse
import concurrent.futures as cf
import http.client
import json
import math
import os
import signal
import sys
import threading
import time
import urllib.parse

import openai

SMOL_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user):
    # SmolLM2's chat template with its default system prompt, as transformers renders it
    # (apply_chat_template(..., add_generation_prompt=True)).
    return (f"<|im_start|>system\n{SMOL_SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n")


results = {}
lock = threading.Lock()


def check(name, ok, detail=""):
    with lock:
        results[name] = [bool(ok), str(detail)[:500]]


def raw(base, path, body, key, headers=None, method="POST"):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    c.request(method, u.path + path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        j = json.loads(data)
    except Exception:
        j = None
    return r.status, j


def error_shape(j):
    return isinstance(j, dict) and isinstance(j.get("error"), dict) and isinstance(j["error"].get("message"), str) \
        and "type" in j["error"] and "param" in j["error"] and "code" in j["error"]


def bad_requests(base, key, model):
    def expect(name, status, body, want, code=None, param=None, k=key, path="/chat/completions", method="POST"):
        s, j = raw(base, path, body, k, method=method)
        ok = s == want and error_shape(j)
        if ok and code is not None:
            ok = j["error"]["code"] == code
        if ok and param is not None:
            ok = j["error"]["param"] == param
        check(name, ok, f"status {s}, body {j}")

    msgs = [{"role": "user", "content": "hi"}]
    expect("error: malformed JSON", 400, b'{"model": "x", "messages": [', 400, code="invalid_json")
    expect("error: body not an object", 400, b'[1, 2]', 400)
    expect("error: temperature of the wrong type", 400,
           json.dumps({"model": model, "messages": msgs, "temperature": "hot"}), 400, param="temperature")
    expect("error: max_tokens of the wrong type", 400,
           json.dumps({"model": model, "messages": msgs, "max_tokens": "ten"}), 400, param="max_tokens")
    expect("error: messages missing", 400, json.dumps({"model": model}), 400, param="messages")
    expect("error: bad role", 400,
           json.dumps({"model": model, "messages": [{"role": "wizard", "content": "x"}]}), 400, param="messages[0].role")
    expect("error: body over the size limit", 413,
           json.dumps({"model": model, "messages": [{"role": "user", "content": "x" * 200_000}]}), 413)
    expect("error: prompt over the context", 400,
           json.dumps({"model": model, "messages": [{"role": "user", "content": "word " * 3000}]}), 400,
           code="context_length_exceeded")
    expect("error: unknown model", 404, json.dumps({"model": "nope", "messages": msgs}), 404, code="model_not_found")
    expect("error: wrong API key", 401, json.dumps({"model": model, "messages": msgs}), 401, k="wrong")
    expect("error: no API key", 401, json.dumps({"model": model, "messages": msgs}), 401, k=None)
    expect("error: unknown route", 404, b'{}', 404, path="/nowhere")
    expect("error: completions with two prompts", 400,
           json.dumps({"model": model, "prompt": ["a", "b"]}), 400, path="/completions", param="prompt")
    # The real client raises the typed errors.
    c = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
    try:
        c.chat.completions.create(model=model, messages=msgs, top_p=7)
        check("openai client: BadRequestError", False, "no error")
    except openai.BadRequestError as e:
        check("openai client: BadRequestError", e.status_code == 400 and "top_p" in str(e), str(e))
    try:
        openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
        check("openai client: AuthenticationError", False, "no error")
    except openai.AuthenticationError as e:
        check("openai client: AuthenticationError", e.status_code == 401, str(e))


def concurrent_answers(base, key, model, expected, max_tokens, name):
    c = openai.OpenAI(base_url=base, api_key=key or "unused", max_retries=0, timeout=600)

    def one(e):
        r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": e["prompt"]}],
                                      temperature=0, max_tokens=max_tokens)
        return r.choices[0].message.content, r.choices[0].finish_reason, r.usage.completion_tokens

    with cf.ThreadPoolExecutor(len(expected)) as ex:
        got = list(ex.map(one, expected))
    wrong = [(i, g[0], e["response"]) for i, (g, e) in enumerate(zip(got, expected)) if g[0] != e["response"]]
    check(name, not wrong and len(got) == len(expected), f"{len(expected) - len(wrong)}/{len(expected)} equal; first difference: {wrong[:1]}")
    reasons = [g[1] == ("length" if e["finish_reason"] == "length" else "stop") and g[2] == e["tokens"]
               for g, e in zip(got, expected)]
    check(name + ": finish reasons and token counts", all(reasons), str([(g[1], g[2]) for g in got]))
    return [g[0] for g in got]


def main_mode(a, expected, sampled):
    base, key, model, mt = a.base_url, a.api_key, a.model, a.max_tokens
    c = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=600)
    ids = [m.id for m in c.models.list().data]
    check("models: lists the served model", ids == [model], str(ids))

    # 16 concurrent clients, with malformed and oversized requests sent at the same time.
    t = threading.Thread(target=bad_requests, args=(base, key, model))
    t.start()
    concurrent_answers(base, key, model, expected, mt, "16 concurrent clients equal ablab generate")
    t.join()

    e0 = expected[0]
    msgs = [{"role": "user", "content": e0["prompt"]}]
    # Streaming chat
    parts, finish, roles, usage = [], None, [], None
    for ch in c.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=mt, stream=True,
                                        stream_options={"include_usage": True}):
        if ch.usage is not None:
            usage = ch.usage
        if not ch.choices:
            continue
        d = ch.choices[0].delta
        if d.role:
            roles.append(d.role)
        if d.content:
            parts.append(d.content)
        if ch.choices[0].finish_reason:
            finish = ch.choices[0].finish_reason
    check("chat stream: text equals ablab generate", "".join(parts) == e0["response"], repr("".join(parts)))
    check("chat stream: role, several chunks, finish reason", roles == ["assistant"] and len(parts) > 1 and finish in ("stop", "length"),
          f"{roles} {len(parts)} {finish}")
    check("chat stream: usage chunk", usage is not None and usage.completion_tokens == e0["tokens"], str(usage))

    # Logprobs (chat)
    r = c.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=mt, logprobs=True, top_logprobs=5)
    ch = r.choices[0]
    lp = ch.logprobs.content
    ok = len(lp) == r.usage.completion_tokens and all(len(t.top_logprobs) == 5 for t in lp)
    detail = ""
    for t in lp:
        tops = [x.logprob for x in t.top_logprobs]
        # greedy: the chosen token is the most probable one
        if t.top_logprobs[0].token != t.token or abs(t.top_logprobs[0].logprob - t.logprob) > 1e-9:
            ok, detail = False, f"chosen {t.token!r} {t.logprob} vs top {t.top_logprobs[0]}"
        if tops != sorted(tops, reverse=True) or max(tops) > 0 or sum(math.exp(x) for x in tops) > 1 + 1e-9:
            ok, detail = False, f"top logprobs not a sorted part of a distribution: {tops}"
        if bytes(t.bytes).decode("utf-8", "replace") != t.token:
            ok, detail = False, f"bytes {t.bytes} vs token {t.token!r}"
    toks = [t.token for t in lp]
    if ch.finish_reason == "stop":
        toks = toks[:-1]   # the end-of-turn token is not part of the text
    if "".join(toks) != ch.message.content:
        ok, detail = False, f"tokens {toks} do not spell {ch.message.content!r}"
    check("chat logprobs: greedy token is top-1, sorted, ≤ 0, tokens spell the text", ok, detail)

    # Completions on the chat-formatted text equal the chat answer
    r = c.completions.create(model=model, prompt=chatml(e0["prompt"]), temperature=0, max_tokens=mt, logprobs=3)
    t = r.choices[0]
    check("completions: raw ChatML prompt equals the chat answer", t.text == e0["response"], repr(t.text))
    lpc = t.logprobs
    ok = len(lpc.tokens) == len(lpc.token_logprobs) == len(lpc.top_logprobs) == len(lpc.text_offset) == r.usage.completion_tokens
    ok = ok and all(len(d) <= 3 and max(d.values()) <= 0 for d in lpc.top_logprobs)
    ok = ok and all(lpc.text_offset[i + 1] - lpc.text_offset[i] == len(lpc.tokens[i].encode()) for i in range(len(lpc.tokens) - 1))
    check("completions logprobs: tokens, token_logprobs, top_logprobs, text_offset", ok, str(lpc)[:300])
    parts = [ch.choices[0].text for ch in c.completions.create(model=model, prompt=chatml(e0["prompt"]), temperature=0,
                                                                max_tokens=mt, stream=True) if ch.choices]
    check("completions stream: text equals the chat answer", "".join(parts) == e0["response"], repr("".join(parts)))

    # Stop strings: the text ends before the first occurrence
    text = e0["response"]
    words = [w for w in text.split(" ") if len(w) >= 3]
    if len(words) >= 2:
        stop = " " + words[1]
        cut = text.find(stop)
        r = c.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=mt, stop=[stop, "zzqx"])
        check("stop: text ends before the stop string", r.choices[0].message.content == text[:cut] and r.choices[0].finish_reason == "stop",
              f"{r.choices[0].message.content!r} vs {text[:cut]!r}")
        parts = [ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
            model=model, messages=msgs, temperature=0, max_tokens=mt, stop=stop, stream=True) if ch.choices]
        check("stop: streamed text ends before the stop string", "".join(parts) == text[:cut], repr("".join(parts)))
    else:
        check("stop: text ends before the stop string", False, "the answer has too few words")

    # Seeded sampling equals `ablab generate --temperature 0.8 --top-p 0.9 --seed 7`
    outs = [c.chat.completions.create(model=model, messages=[{"role": "user", "content": sampled["prompt"]}], temperature=0.8,
                                      top_p=0.9, seed=7, max_tokens=mt).choices[0].message.content for _ in range(2)]
    check("sampling: seed 7 equals ablab generate with the same seed", outs[0] == outs[1] == sampled["response"],
          f"{outs} vs {sampled['response']!r}")
    r = c.chat.completions.create(model=model, messages=msgs, max_tokens=1)
    check("max_tokens 1: one token, finish length", r.usage.completion_tokens == 1 and r.choices[0].finish_reason == "length",
          str(r.usage))


def drain_mode(a, expected):
    c = openai.OpenAI(base_url=a.base_url, api_key=a.api_key, max_retries=0, timeout=600)
    parts, finish, signalled = [], None, False
    stream = c.chat.completions.create(model=a.model, messages=[{"role": "user", "content": expected[0]["prompt"]}],
                                       temperature=0, max_tokens=a.max_tokens, stream=True)
    for ch in stream:
        if ch.choices and ch.choices[0].delta.content:
            parts.append(ch.choices[0].delta.content)
            if not signalled:
                os.kill(a.pid, signal.SIGINT)
                signalled = True
        if ch.choices and ch.choices[0].finish_reason:
            finish = ch.choices[0].finish_reason
    check("drain: the stream in flight finished after SIGINT", signalled and finish in ("stop", "length")
          and "".join(parts) == expected[0]["response"], f"{finish} {''.join(parts)!r}")
    time.sleep(1.0)
    try:
        openai.OpenAI(base_url=a.base_url, api_key=a.api_key, max_retries=0, timeout=10).models.list()
        check("drain: no new connections after the drain", False, "a request was answered")
    except openai.APIConnectionError:
        check("drain: no new connections after the drain", True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["main", "answers", "drain"])
    p.add_argument("--base-url", required=True)
    p.add_argument("--api-key", default=None)
    p.add_argument("--model", required=True)
    p.add_argument("--expected", required=True, help="JSONL written by ablab generate")
    p.add_argument("--sampled", help="JSON {prompt, response} of ablab generate with temperature 0.8, top-p 0.9, seed 7")
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument("--pid", type=int)
    a = p.parse_args()
    expected = [json.loads(l) for l in open(a.expected) if l.strip()]
    try:
        if a.mode == "main":
            main_mode(a, expected, json.load(open(a.sampled)))
        elif a.mode == "answers":
            concurrent_answers(a.base_url, a.api_key, a.model, expected, a.max_tokens, "concurrent clients equal ablab generate")
        else:
            drain_mode(a, expected)
    except Exception as e:  # any unexpected failure is a failed check, reported with its reason
        check("no unexpected exception", False, f"{type(e).__name__}: {e}")
    json.dump(results, sys.stdout)
