"""Shared by the benchmark peers (peer_torch.py, peer_llamacpp.py): the command line, the prompt
selection (identical to `ablab bench`), the JSON output and the failure convention.

Prompt selection: read the JSONL, keep the lines whose `text` is non-empty, in file order, take the
first n. Each prompt becomes one user message; the model's chat template adds its default system
prompt and the generation prompt.
"""
import argparse
import json
import os
import platform
import resource
import sys
import time
import traceback

WARMUP_PROMPTS = 2


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", required=True, help="path of the .gguf file")
    p.add_argument("--prompts", required=True, help="JSONL with a `text` field per line")
    p.add_argument("--n", type=int, default=64, help="number of prompts (first n with non-empty text)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--new-tokens", type=int, default=64, help="new tokens per generated sequence")
    p.add_argument("--batch", type=int, default=16, help="prompts per batch")
    p.add_argument("--json", required=True, help="where to write the results")
    return p.parse_args()


def load_prompts(path, n):
    """The first n non-empty `text` fields of a JSONL file, in file order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            text = json.loads(line).get("text")
            if isinstance(text, str) and text != "":
                out.append(text)
                if len(out) == n:
                    break
    if len(out) < n:
        raise ValueError(f"{path}: only {len(out)} prompts with non-empty text, {n} asked")
    return out


def messages_for(text):
    """One user turn; the chat template supplies the default system prompt."""
    return [{"role": "user", "content": text}]


def peak_rss_mb():
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def load_average():
    """The 1-minute load average (other work on the machine skews the timings)."""
    try:
        with open("/proc/loadavg", encoding="utf-8") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def now():
    return time.perf_counter()


def rate(tokens, seconds):
    return round(tokens / seconds, 3) if seconds > 0 else None


def write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def log(peer, msg):
    print(f"[{peer}] {msg}", file=sys.stderr, flush=True)


def run_peer(peer, body):
    """Runs body(args) -> dict and writes it; on any failure writes {"peer", "error"} and exits 0 so
    the benchmark goes on with the other peers."""
    args = parse_args(f"{peer} peer of `make bench`")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = load_average()
    try:
        result = body(args)
        out = {"peer": peer}
        out.update(result)
        out["peak_rss_mb"] = peak_rss_mb()
        out["started"] = started
        out["load_average"] = {"before": load_before, "after": load_average()}
        out["python"] = platform.python_version()
        write_json(args.json, out)
        log(peer, f"wrote {args.json}")
    except BaseException as e:  # noqa: BLE001 - a failed peer must not stop the bench
        if isinstance(e, KeyboardInterrupt):
            raise
        traceback.print_exc()
        msg = f"{type(e).__name__}: {e}".strip()
        try:
            write_json(args.json, {"peer": peer, "model": os.path.basename(args.model), "error": msg,
                                   "started": started})
            log(peer, f"failed ({msg}); wrote {args.json}")
        except Exception:  # noqa: BLE001
            traceback.print_exc()
    sys.exit(0)
