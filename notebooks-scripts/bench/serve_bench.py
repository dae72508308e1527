"""Throughput of `ablab serve` with concurrent clients, next to `ablab bench`'s generate_batched.

For each model: starts `ablab serve` on 127.0.0.1 (any free port), warms it up with 2 requests, then
CLIENTS threads of the `openai` client each send one chat completion at the same moment: the first
CLIENTS prompts of harmful.jsonl (the prompts `ablab bench` uses), greedy, exactly NEW tokens each
(`ignore_eos`, as `ablab bench` decodes without stopping at EOS). tokens/s = CLIENTS × NEW / wall time
from the first request sent to the last answer received (prefill, HTTP and JSON included). Then, in
the same minute, `ablab bench --workloads generate_batched` on the same prompts and sizes. Writes
runs/bench/serve-<model>.json and puts the section "ablab serve (concurrent clients)" at the end of
results.md (replacing an earlier one).

Usage (the openai client is in the test venv: make venv-test):
  .venv-test/bin/python notebooks-scripts/bench/serve_bench.py [--models M.gguf ...] [--clients 16] [--new 64]
"""
import argparse
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import time

import openai

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MARK = "## ablab serve (concurrent clients)"


def prompts(n):
    out = []
    with open(os.path.join(ROOT, "notebooks-scripts/data/prompts/harmful.jsonl"), encoding="utf-8") as f:
        for line in f:
            t = json.loads(line).get("text", "")
            if t:
                out.append(t)
            if len(out) == n:
                break
    return out


def serve_throughput(ablab, model, clients, new, threads):
    p = subprocess.Popen([ablab, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0", "--threads", str(threads),
                          "--max-batch", str(clients), "--served-name", "bench"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        port = None
        deadline = time.time() + 300
        while time.time() < deadline and port is None:
            line = p.stderr.readline()
            if not line:
                raise RuntimeError("ablab serve exited before listening")
            m = re.search(r"on http://127\.0\.0\.1:(\d+)/v1", line)
            if m:
                port = int(m.group(1))
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=3600)
        ps = prompts(clients)

        def one(text, n=new):
            r = c.chat.completions.create(model="bench", messages=[{"role": "user", "content": text}], temperature=0,
                                          max_tokens=n, extra_body={"ignore_eos": True})
            return r.usage.completion_tokens

        for t in ps[:2]:
            one(t, 4)   # warm-up
        start = time.perf_counter()
        with cf.ThreadPoolExecutor(clients) as ex:
            tokens = sum(ex.map(one, ps))
        seconds = time.perf_counter() - start
        return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds, "clients": clients, "new_tokens": new}
    finally:
        p.send_signal(2)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


def batched(ablab, model, clients, new, threads, out):
    subprocess.run([ablab, "bench", "--model", model, "--prompts", os.path.join(ROOT, "notebooks-scripts/data/prompts/harmful.jsonl"),
                    "--n", str(clients), "--threads", str(threads), "--new-tokens", str(new), "--batch", str(clients),
                    "--workloads", "generate_batched", "--json", out], check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)["workloads"]["generate_batched"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=["SmolLM2-135M-Instruct.Q4_1.gguf", "Qwen2.5-Coder-0.5B-Instruct.gguf"])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ablab", default=os.path.join(ROOT, ".build/release/ablab"))
    ap.add_argument("--out", default=os.path.join(ROOT, "runs/bench"))
    ap.add_argument("--report", default=os.path.join(ROOT, "notebooks-scripts/bench/results.md"))
    a = ap.parse_args()
    models_dir = os.environ.get("ABLAB_MODELS_DIR", os.path.join(ROOT, "models"))
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for m in a.models:
        path = os.path.join(models_dir, m)
        if not os.path.exists(path):
            print(f"serve_bench: skipping {m}: not in {models_dir}", file=sys.stderr)
            continue
        stem = m[:-5] if m.endswith(".gguf") else m
        load0 = os.getloadavg()[0]
        s = serve_throughput(a.ablab, path, a.clients, a.new, a.threads)
        b = batched(a.ablab, path, a.clients, a.new, a.threads, os.path.join(a.out, f"serve-batched-{stem}.json"))
        load1 = os.getloadavg()[0]
        rec = {"model": m, "serve": s, "generate_batched": b, "load_average": [load0, load1]}
        with open(os.path.join(a.out, f"serve-{stem}.json"), "w") as f:
            json.dump(rec, f, indent=2)
        rows.append(rec)
        print(f"serve_bench: {m}: serve {s['tokens_per_s']:.1f} tok/s, generate_batched {b['tokens_per_s']:.1f} tok/s", file=sys.stderr)
    if not rows:
        return 1
    lines = [MARK, "",
             f"Written by `notebooks-scripts/bench/serve_bench.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
             f"{a.clients} concurrent `openai` clients, one chat completion each (the first {a.clients} prompts of harmful.jsonl), "
             f"greedy, exactly {a.new} new tokens (`ignore_eos`), {a.threads} threads; tokens/s = clients × new tokens / wall time "
             "from the first request to the last answer (prefill, HTTP and JSON included). `ablab generate` batched = "
             "`ablab bench --workloads generate_batched` on the same prompts and sizes, run right after. One run each on a "
             "shared machine: expect ±30 %.", "",
             "| model | ablab serve, 16 clients (tokens/s) | ablab generate batched (tokens/s) | serve / batched | load average (before → after) |",
             "|---|---|---|---|---|"]
    for r in rows:
        s, b = r["serve"], r["generate_batched"]
        lines.append(f"| {r['model']} | {s['tokens_per_s']:.1f} | {b['tokens_per_s']:.1f} | {s['tokens_per_s'] / b['tokens_per_s']:.2f}× | "
                     f"{r['load_average'][0]:.2f} → {r['load_average'][1]:.2f} |")
    section = "\n".join(lines) + "\n"
    text = open(a.report, encoding="utf-8").read() if os.path.exists(a.report) else ""
    if MARK in text:
        text = text[:text.index(MARK)].rstrip("\n") + "\n\n"
    elif text and not text.endswith("\n\n"):
        text = text.rstrip("\n") + "\n\n"
    with open(a.report, "w", encoding="utf-8") as f:
        f.write(text + section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
