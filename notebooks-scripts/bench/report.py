#!/usr/bin/env python3
"""The table of `make bench`: reads the JSON that `ablab bench` and the two peers wrote and prints a
markdown report (also written to notebooks-scripts/bench/results.md).

  report.py [--dir runs/bench] [--out notebooks-scripts/bench/results.md] [MODEL.gguf ...]

Files read per model (stem = the file name without .gguf), all optional:
  ablab-<stem>.json             ablab bench: record, generate_batched, decode_single (with --compute bf16
                                also record_bf16, generate_batched_bf16 and bf16_deviation)
  ablab-record_all-<stem>.json  ablab bench --workloads record over every prompt (peak RSS target);
                                a `record_all` workload inside ablab-<stem>.json is read too
  pytorch-<stem>.json           peer_torch.py
  llamacpp-<stem>.json          peer_llamacpp.py
  profile-<stem>-<workload>.json  perf_profile.py: where the time goes (shown under a target not met)
A missing file, a file with "error", or a workload without tokens_per_s shows as "not run (reason)".
Uses only the standard library.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

PEERS = [("ablab", "ablab"), ("pytorch", "PyTorch"), ("llamacpp", "llama.cpp")]
# Targets of the issue: ablab's rate over a peer's (workload, peer key, factor).
TARGETS = {
    "record": ("pytorch", 3.0),
    "generate_batched": ("pytorch", 4.0),
    "decode_single": ("llamacpp", 1.0),
}
# Peak RSS targets of the issue for recording (record_all: every prompt of both files), in GB by model
# stem prefix; ru_maxrss is in KiB, peak_rss_mb in MiB. The larger checkpoint, benched by ablab alone,
# has a target for its whole run (record and generate).
RSS_LIMIT_GB = {"SmolLM2-135M": 0.4, "Qwen2.5-Coder-0.5B": 1.0, "Qwen2.5-Coder-1.5B": 2.0}
DEFAULT_RSS_LIMIT_GB = 1.5


def rss_limit_mib(stem):
    gb = next((v for k, v in RSS_LIMIT_GB.items() if stem.startswith(k)), DEFAULT_RSS_LIMIT_GB)
    return gb, gb * 1e9 / 2**20


def profile_lines(directory, stem, name):
    """The profile of one workload (perf_profile.py), as a sentence under the table."""
    doc, why = load(os.path.join(directory, f"profile-{stem}-{name}.json"))
    if doc is None or why:
        return [f"{name}: no profile ({short(why or 'no results', 90)})."]
    parts = ", ".join(f"{g['part']} {g['percent']:.0f}%" for g in doc.get("groups", []) if g.get("percent", 0) >= 1)
    rate = doc.get("tokens_per_s_while_sampled")
    at = f" (sampled with perf at {fmt_rate(rate)} tok/s, {doc.get('threads')} threads)" if isinstance(rate, (int, float)) else ""
    return [f"Where the time of {name} goes{at}: {parts}."]


def scrub(text):
    """No absolute paths of the machine in the report: the repository root becomes '.'."""
    text = str(text)
    for root in {REPO, os.path.realpath(REPO), os.getcwd()}:
        text = text.replace(root + os.sep, "").replace(root, ".")
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        text = text.replace(home, "~")
    return re.sub(r"\s+", " ", text).strip()


def short(text, limit=110):
    text = scrub(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load(path):
    """(dict or None, reason if not usable)."""
    if not os.path.exists(path):
        return None, f"no {os.path.basename(path)}"
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        return None, f"unreadable {os.path.basename(path)}: {e}"
    if not isinstance(d, dict):
        return None, f"{os.path.basename(path)} is not a JSON object"
    if d.get("error"):
        return d, str(d["error"])
    return d, None


def workload(doc, name):
    """(workload dict or None, reason)."""
    if doc is None:
        return None, None
    w = (doc.get("workloads") or {}).get(name)
    if w is None:
        return None, f"no {name} in its results"
    if not isinstance(w, dict):
        return None, f"{name}: {w}"
    if w.get("error"):
        return None, str(w["error"])
    if not isinstance(w.get("tokens_per_s"), (int, float)):
        return None, w.get("note") or f"{name} has no tokens_per_s"
    return w, None


def fmt_rate(x):
    return "—" if x is None else (f"{x:,.1f}" if x >= 10 else f"{x:.2f}")


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def fmt_mib(x):
    return "—" if not isinstance(x, (int, float)) else f"{x:,.0f} MiB"


def incl_prefill_rate(w):
    if w is None:
        return None
    if isinstance(w.get("tokens_per_s_incl_prefill"), (int, float)):
        return w["tokens_per_s_incl_prefill"]
    secs = w.get("seconds_with_prefill", w.get("total_seconds"))
    new = w.get("new_tokens", (w.get("tokens") or 0) + 1)
    if isinstance(secs, (int, float)) and secs > 0 and new:
        return new / secs
    return None


def find_key(obj, pattern):
    """First value whose key matches pattern (searched recursively), for fields like the OpenBLAS core."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if re.search(pattern, k, re.I) and isinstance(v, (str, int, float)):
                return v
        for v in obj.values():
            got = find_key(v, pattern)
            if got is not None:
                return got
    return None


def machine():
    cpu, flags, mem = None, set(), None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if cpu is None and line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif not flags and line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) / 2**20  # KiB -> GiB
    except OSError:
        pass
    vec = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return {"cpu": cpu or platform.processor() or "unknown", "cores": os.cpu_count(),
            "vector": ", ".join(vec) if vec else "none of avx2/fma/avx512f", "mem_gib": mem}


def model_stems(args, directory):
    if args.models:
        return [os.path.basename(m)[: -len(".gguf")] if m.endswith(".gguf") else os.path.basename(m)
                for m in args.models]
    stems = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        name = os.path.basename(path)[: -len(".json")]
        for prefix in ("ablab-record_all-", "ablab-", "pytorch-", "llamacpp-"):
            if name.startswith(prefix):
                stem = name[len(prefix):]
                if stem not in stems:
                    stems.append(stem)
                break
    return stems


def fmt_pct(x):
    return "—" if not isinstance(x, (int, float)) else f"{100 * x:.2f} %"


def bf16_rows(doc, torch_doc=None):
    """ablab's `--compute bf16` next to its f32 rates: rates, speed-up, residual deviation, greedy agreement.
    Nothing when ablab did not run at all (the table above says so); a "not run" line when it ran without bf16."""
    if doc is None:
        return []
    f32 = {n: workload(doc, n)[0] for n in ("record", "generate_batched")}
    b16 = {n: workload(doc, n + "_bf16")[0] for n in ("record", "generate_batched")}
    dev = doc.get("bf16_deviation") if isinstance(doc.get("bf16_deviation"), dict) else {}
    if not any(b16.values()):
        return ["**ablab `--compute bf16`:** not run (no bf16 results in ablab's JSON: the CPU lacks avx512_bf16, "
                "or the run predates it).", ""]
    rel = dev.get("residual_rel_l2") if isinstance(dev.get("residual_rel_l2"), dict) else {}
    agree = dev.get("greedy_agreement") if isinstance(dev.get("greedy_agreement"), dict) else {}
    lines = ["ablab `--compute bf16` (weight products with bf16 operands via vdpbf16ps, Float32 accumulation; "
             "never the default) against its f32 runs above:", "",
             "| ablab compute | record (tokens/s) | generate_batched (tokens/s) | residual relative L2 vs f32: median / max "
             "| greedy answers token-identical | mean identical leading tokens |",
             "|---|---|---|---|---|---|"]
    rate = lambda w: w["tokens_per_s"] if w else None
    lines.append(f"| f32 | {fmt_rate(rate(f32['record']))} | {fmt_rate(rate(f32['generate_batched']))} | — | — | — |")
    cells = []
    for n in ("record", "generate_batched"):
        r = rate(b16[n])
        t = workload(torch_doc, n)[0] if torch_doc is not None else None
        vs_torch = f", {fmt_ratio(r, rate(t))} PyTorch fp32" if r is not None and t else ""
        cells.append("not run" if r is None else f"{fmt_rate(r)} ({fmt_ratio(r, rate(f32[n]))} f32{vs_torch})")
    ident = agree.get("identical_fraction")
    n_ans = agree.get("answers")
    ident_text = fmt_pct(ident) + (f" of {n_ans}" if isinstance(n_ans, int) and isinstance(ident, (int, float)) else "")
    lines.append(f"| bf16 | {cells[0]} | {cells[1]} | {fmt_pct(rel.get('median'))} / {fmt_pct(rel.get('max'))} "
                 f"| {ident_text} | {fmt_pct(agree.get('mean_leading_identical_fraction'))} |")
    lines.append("")
    if rel.get("over"):
        lines += [f"Residual relative L2 = ‖r_bf16 − r_f32‖ / ‖r_f32‖ per prompt and layer over {scrub(rel['over'])}.", ""]
    return lines


def model_section(directory, stem):
    docs, why = {}, {}
    for key, _ in PEERS:
        docs[key], why[key] = load(os.path.join(directory, f"{key}-{stem}.json"))
    lines = [f"## {stem}", ""]
    notes = []

    shown = set()

    def not_run(key, reason, whole_peer=False):
        # A whole peer that did not run: its reason once, in the first row; the notes repeat it in full.
        if whole_peer:
            if key in shown:
                return "not run"
            shown.add(key)
        reason = re.sub(r"^not run\s*[:—-]\s*", "", scrub(reason), flags=re.I)
        return f"not run ({short(reason, 70)})"

    def cell(key, name):
        doc = docs[key]
        if doc is None or why[key]:
            return None, not_run(key, why[key] or "no results", whole_peer=True)
        w, reason = workload(doc, name)
        if w is None:
            return None, not_run(key, reason)
        text = fmt_rate(w["tokens_per_s"])
        if key == "llamacpp" and name == "record":
            text += " (prefill only)"
        return w["tokens_per_s"], text

    lines.append("| workload (tokens/s) | ablab | PyTorch | llama.cpp | ablab / PyTorch | ablab / llama.cpp "
                 "| target | status |")
    lines.append("|---|---|---|---|---|---|---|---|")
    labels = {"record": "record", "generate_batched": "generate_batched (16 × 64)",
              "decode_single": "decode_single (decode only)"}
    unmet = []
    for name in ("record", "generate_batched", "decode_single"):
        vals = {key: cell(key, name) for key, _ in PEERS}
        a, t, l = vals["ablab"][0], vals["pytorch"][0], vals["llamacpp"][0]
        peer_key, factor = TARGETS[name]
        peer_name = dict(PEERS)[peer_key]
        target = f"≥ {factor:g}× {peer_name}"
        b = vals[peer_key][0]
        if a is None or b is None:
            missing = "ablab" if a is None else peer_name
            status = f"n/a ({missing} not run)"
        else:
            status = "**met**" if a >= factor * b else "not met"
            if status == "not met":
                unmet.append(name)
        label = labels[name]
        if name == "generate_batched":
            w = (docs["pytorch"] or {}).get("workloads", {}).get(name) or \
                (docs["ablab"] or {}).get("workloads", {}).get(name) or {}
            if w.get("batch") and w.get("new_tokens"):
                label = f"generate_batched ({w['batch']} × {w['new_tokens']})"
        lines.append(f"| {label} | {vals['ablab'][1]} | {vals['pytorch'][1]} | {vals['llamacpp'][1]} "
                     f"| {fmt_ratio(a, t)} | {fmt_ratio(a, l)} | {target} | {status} |")
    # decode including the prefill (information, no target)
    inc = {}
    for key, _ in PEERS:
        w, _r = workload(docs[key], "decode_single") if docs[key] is not None and not why[key] else (None, None)
        inc[key] = incl_prefill_rate(w)
    lines.append(f"| decode_single incl. prefill | {fmt_rate(inc['ablab'])} | {fmt_rate(inc['pytorch'])} "
                 f"| {fmt_rate(inc['llamacpp'])} | {fmt_ratio(inc['ablab'], inc['pytorch'])} "
                 f"| {fmt_ratio(inc['ablab'], inc['llamacpp'])} | — | — |")

    # record_all: ablab only, peak RSS
    ra_doc, ra_why = load(os.path.join(directory, f"ablab-record_all-{stem}.json"))
    ra = None
    if docs["ablab"] is not None and not why["ablab"]:
        ra = (docs["ablab"].get("workloads") or {}).get("record_all")
    if isinstance(ra, dict) and ra.get("error"):
        ra_why, ra = str(ra["error"]), None
    if ra is None and ra_doc is not None and not ra_why:
        w = (ra_doc.get("workloads") or {}).get("record")
        if isinstance(w, dict) and not w.get("error"):
            ra = dict(w)
            ra.setdefault("peak_rss_mb", ra_doc.get("peak_rss_mb"))
            ra.setdefault("prompts", ra_doc.get("prompts"))
        elif isinstance(w, dict):
            ra_why = str(w["error"])
    limit_gb, limit_mib = rss_limit_mib(stem)
    lim = f"≤ {limit_gb:g} GB ({limit_mib:,.0f} MiB) peak RSS"
    if isinstance(ra, dict):
        rss = ra.get("peak_rss_mb")
        count = ra.get("prompts") or ra.get("n_prompts")
        what = f"record_all ({count} prompts): peak RSS" if count else "record_all: peak RSS"
        rate = f", {fmt_rate(ra['tokens_per_s'])} tok/s" if isinstance(ra.get("tokens_per_s"), (int, float)) else ""
        status = "—" if not isinstance(rss, (int, float)) else ("**met**" if rss <= limit_mib else "not met")
        lines.append(f"| {what} | {fmt_mib(rss)}{rate} | — | — | — | — | {lim} | {status} |")
    elif docs["ablab"] is not None and not why["ablab"] and not any(docs[k] is not None and not why[k]
                                                                   for k in ("pytorch", "llamacpp")):
        # ablab alone (the larger checkpoint): the whole run's peak RSS (record + generate) is the target.
        rss = docs["ablab"].get("peak_rss_mb")
        status = "—" if not isinstance(rss, (int, float)) else ("**met**" if rss <= limit_mib else "not met")
        lines.append(f"| record + generate: peak RSS (whole run) | {fmt_mib(rss)} | — | — | — | — "
                     f"| {lim} | {status} |")
    else:
        lines.append(f"| record_all: peak RSS | not run ({short(ra_why or 'no record_all results', 80)}) | — | — "
                     f"| — | — | {lim} | n/a |")
    lines.append("")
    for name in unmet:
        lines += profile_lines(directory, stem, name) + [""]

    lines += bf16_rows(docs["ablab"] if not why["ablab"] else None,
                       docs["pytorch"] if docs["pytorch"] is not None and not why["pytorch"] else None)

    # per-peer facts
    lines.append("| | ablab | PyTorch | llama.cpp |")
    lines.append("|---|---|---|---|")

    def fact(f):
        out = []
        for key, _ in PEERS:
            d = docs[key]
            out.append(f(d) if d is not None and not why[key] else "—")
        return " | ".join(out)

    lines.append("| peak RSS (whole run) | " + fact(lambda d: fmt_mib(d.get("peak_rss_mb"))) + " |")
    lines.append("| prompt tokens (total) | " + fact(lambda d: str(d.get("prompt_tokens", "—"))) + " |")
    lines.append("| prompts | " + fact(lambda d: str(d.get("prompts", d.get("n_prompts", "—")))) + " |")
    lines.append("| threads | " + fact(lambda d: str(d.get("threads", "—"))) + " |")
    lines.append("| version | " + fact(lambda d: short(d.get("version", "—"), 60)) + " |")

    def load_cell(d):
        la = d.get("load_average")
        if isinstance(la, dict) and la.get("before") is not None:
            return f"{la['before']:.2f} → {la.get('after', float('nan')):.2f}"
        return "—"

    lines.append("| load average (1 min, before → after) | " + fact(load_cell) + " |")
    lines.append("")

    counts = {key: docs[key].get("prompt_tokens") for key, _ in PEERS
              if docs[key] is not None and not why[key] and isinstance(docs[key].get("prompt_tokens"), int)}
    if len(counts) >= 2:
        if len(set(counts.values())) == 1:
            notes.append(f"Prompt tokens agree across {', '.join(dict(PEERS)[k] for k in counts)}: "
                         f"{next(iter(counts.values()))}.")
        else:
            notes.append("**Prompt token counts differ**: " +
                         ", ".join(f"{dict(PEERS)[k]} {v}" for k, v in counts.items()) +
                         " — the sides did not see the same token sequences.")
    g = {}
    for key in ("pytorch", "llamacpp", "ablab"):
        w, _r = workload(docs[key], "decode_single") if docs[key] is not None and not why[key] else (None, None)
        if w and isinstance(w.get("generated_ids"), list):
            g[key] = w["generated_ids"]
    if "pytorch" in g and "llamacpp" in g:
        a, b = g["pytorch"], g["llamacpp"]
        same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        notes.append(f"decode_single greedy tokens: PyTorch (float32) and llama.cpp (GGUF as stored) agree on "
                     f"the first {same} of {min(len(a), len(b))}.")
    for key, name in PEERS:
        if why[key]:
            notes.append(f"{name}: not run — {scrub(why[key])}")
        elif docs[key] is not None:
            for wname, w in (docs[key].get("workloads") or {}).items():
                if isinstance(w, dict) and w.get("note"):
                    notes.append(f"{name} {wname}: {scrub(w['note'])}")
    if ra_why and not isinstance(ra, dict) and not ra_why.startswith("no "):
        notes.append(f"ablab record_all: not run — {scrub(ra_why)}")
    if notes:
        lines += [f"- {n}" for n in notes] + [""]
    return lines, docs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="model files or stems (default: every model with results)")
    ap.add_argument("--dir", default=os.path.join(REPO, "runs", "bench"))
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"), help="'-' to print only")
    args = ap.parse_args()

    stems = model_stems(args, args.dir)
    m = machine()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = ["# `make bench` results", "",
             f"Written by `notebooks-scripts/bench/report.py` on {now}. Same prompts on every side: the first "
             "N non-empty prompts of `notebooks-scripts/data/prompts/harmful.jsonl` in the model's chat template. "
             "tokens/s: record = prompt tokens / s; generate_batched = batch × new tokens / s (prefill "
             "included); decode_single = new tokens after the first / s after the prefill. Each workload is "
             "timed once after a warm-up on 2 prompts; on a shared machine expect ±30% between runs.", ""]
    mem = f", {m['mem_gib']:.0f} GiB" if m["mem_gib"] else ""
    lines.append(f"**Machine:** {m['cpu']}, {m['cores']} cores{mem}; {m['vector']}; "
                 f"{platform.system()} {platform.machine()}.")
    all_docs = []
    if not stems:
        lines += ["", f"No results in {scrub(args.dir)}."]
    for stem in stems:
        if lines[-1] != "":
            lines.append("")
        sec, docs = model_section(args.dir, stem)
        lines += sec
        all_docs.append(docs)

    # versions and libraries, once
    facts = {}
    for docs in all_docs:
        for key, name in PEERS:
            d = docs.get(key)
            if d is None or d.get("error"):
                continue
            if d.get("version"):
                facts.setdefault(f"{name} version", scrub(d["version"]))
            blas = find_key(d, r"openblas|blas_core|corename")
            if blas is not None and key == "ablab":
                set_by = " (OPENBLAS_CORETYPE set by ablab)" if d.get("openblas_coretype_set_by_ablab") else ""
                facts.setdefault("ablab OpenBLAS core (analysis only; the forward pass uses ablab's kernels)", scrub(blas) + set_by)
            if key == "ablab" and d.get("kernel_path"):
                facts.setdefault("ablab kernel path", f"{d['kernel_path']} (this CPU runs: {', '.join(d.get('kernel_paths_available', []))})")
            if key == "ablab" and d.get("weight_formats"):
                facts.setdefault(f"ablab weights as held ({d.get('model', '')})", d["weight_formats"])
            if d.get("torch_cpu_capability"):
                facts.setdefault("PyTorch CPU capability", d["torch_cpu_capability"])
            if d.get("system_info"):
                facts.setdefault("llama.cpp system info", short(d["system_info"], 300))
            if d.get("started"):
                facts.setdefault(f"{name} run started", d["started"])
    if facts:
        lines += ["## Versions and libraries", ""] + [f"- {k}: {v}" for k, v in facts.items()] + [""]

    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    if args.out != "-":
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"report: wrote {scrub(os.path.abspath(args.out))}", file=sys.stderr)


if __name__ == "__main__":
    main()
