#!/usr/bin/env python3
"""Where the time of one `ablab bench` workload goes: samples it with Linux `perf` and writes the shares
of the program's time by part of the forward pass, for results.md (report.py shows it under a target
that is not met).

  perf_profile.py --ablab .build/release/ablab --model M.gguf --prompts P.jsonl --workload record
             [--n 32] [--threads 2] [--new-tokens 64] [--batch 16] --json runs/bench/profile-<stem>-<workload>.json

Without `perf` (or where the kernel forbids sampling) the JSON says why and report.py shows that instead.
Shares are of all samples of the process (every thread, user and kernel), grouped by symbol:
  weight products (register tiles …)  the many-rows products over decoded Float32 panels (every format)
  weight products (<format>: …)       decoding panels, and the few-rows products, per stored format
  attention                   scores, softmax, weighted values
  worker pool waits           helper threads spinning or yielding between products (scheduler symbols)
  norms, activations, RoPE    the elementwise kernels
  HDF5 writing                libhdf5 (record only)
  other                       everything else (tokenizer, sampling, memory copies, …)
Uses only the standard library (and `perf`, `swift-demangle` when on PATH).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

FORMAT = re.compile(r"10(F32|F16|BF16|Q8_0|Q4_0|Q4_1|Q5_0|Q5_1|Q4_K|Q5_K|Q6_K)Format")


def group(symbol):
    """The part of the forward pass a sampled symbol belongs to."""
    s = symbol
    if "panelProduct" in s or "tile4x4" in s or "tile6x4" in s:
        # the register tiles over decoded Float32 panels, shared by every stored format
        return "weight products (register tiles over decoded panels, every format)"
    if "matmulTyped" in s or "registerProduct" in s or "decodeRows" in s:
        m = FORMAT.search(s)
        return f"weight products ({m.group(1) if m else 'other format'}: decoding, few-rows products)"
    if "attend" in s or "softmax" in s:
        return "attention"
    if any(k in s for k in ("__schedule", "sched_yield", "schedule", "WorkerPool", "futex", "pick_next",
                            "finish_task_switch", "_raw_spin", "do_syscall", "entry_SYSCALL", "syscall_exit")):
        return "worker pool waits (spinning, yielding, waking)"
    if any(k in s for k in ("rmsNorm", "layerNorm", "swiglu", "geglu", "rope", "gelu", "addInPlace", "softcap")):
        return "norms, activations, RoPE"
    if s.startswith("H5") or "H5_" in s or "fletcher" in s or "deflate" in s:
        return "HDF5 writing"
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ablab", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--workload", required=True, choices=["record", "generate_batched", "decode_single"])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    out = {"workload": args.workload, "model": os.path.basename(args.model), "threads": args.threads, "n": args.n}

    def write(doc):
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")

    perf = shutil.which("perf")
    if perf is None:
        write({**out, "error": "perf is not installed (linux-perf / linux-tools)"})
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        cmd = [perf, "record", "-F", "997", "-o", data, "--", args.ablab, "bench", "--model", args.model,
               "--prompts", args.prompts, "--n", str(args.n), "--threads", str(args.threads),
               "--new-tokens", str(args.new_tokens), "--batch", str(args.batch), "--workloads", args.workload,
               "--json", os.path.join(tmp, "bench.json")]
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0 or not os.path.exists(data):
            last = [l for l in r.stderr.splitlines() if l.strip()][-1:] or ["no output"]
            write({**out, "error": f"perf record failed (status {r.returncode}): {last[0]}"})
            return
        rep = subprocess.run([perf, "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio",
                              "--percent-limit", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            with open(os.path.join(tmp, "bench.json"), encoding="utf-8") as f:
                bench = json.load(f)
            w = (bench.get("workloads") or {}).get(args.workload) or {}
            out["tokens_per_s_while_sampled"] = w.get("tokens_per_s")
        except (OSError, ValueError):
            pass
    shares, symbols = {}, []
    line_re = re.compile(r"^\s*([0-9.]+)%\s+\[[.k]\]\s+(.+?)\s*$")
    for line in rep.stdout.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        pct, sym = float(m.group(1)), m.group(2)
        g = group(sym)
        shares[g] = shares.get(g, 0.0) + pct
        symbols.append((pct, sym))
    if not shares:
        write({**out, "error": "perf report gave no samples"})
        return
    top = sorted(symbols, reverse=True)[:8]
    names = [s for _, s in top]
    demangle = shutil.which("swift-demangle")
    if demangle:
        d = subprocess.run([demangle, "--simplified", "--compact"], input="\n".join(names), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        if d.returncode == 0 and len(d.stdout.splitlines()) == len(names):
            names = d.stdout.splitlines()
    out["groups"] = [{"part": g, "percent": round(p, 1)} for g, p in sorted(shares.items(), key=lambda kv: -kv[1])]
    out["top_symbols"] = [{"percent": round(p, 1), "symbol": n.strip()[:160]} for (p, _), n in zip(top, names)]
    write(out)
    print(f"profile: {args.workload} of {out['model']}: " +
          ", ".join(f"{g['part']} {g['percent']}%" for g in out["groups"][:4]), file=sys.stderr)


if __name__ == "__main__":
    main()
