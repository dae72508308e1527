#!/usr/bin/env python3
"""Check that files ablab's Swift tests wrote are read by h5py + numpy with the expected values.

Usage: check_interop.py DIR   (DIR is $ABLAB_INTEROP_DIR, e.g. .build/interop)

Each kind of file has one check function, registered in CHECKS with the file(s) it needs relative to
DIR. The Swift tests write the files with values given by formulas; the functions here recompute the
same formulas independently with numpy and compare every value and attribute. A kind whose files are
missing is reported as SKIPPED (by name), never silently. Exit status: 0 when every present kind
passes and at least one ran; 1 on any failure; 2 when nothing was checked.

To add a kind: write `def check_<kind>(dir, report)` that calls report.check(name, condition, detail)
for each assertion, then add (kind, [required files or globs], function) to CHECKS.
"""
import glob
import os
import sys
import traceback

import h5py
import numpy as np


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.kind = ""

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"  FAIL [{self.kind}] {name}: {detail}")

    def equal(self, name, got, want):
        got = np.asarray(got)
        want = np.asarray(want)
        ok = got.shape == want.shape and np.array_equal(got, want, equal_nan=want.dtype.kind == "f")
        if ok and want.dtype.kind == "f":
            ok = np.array_equal(np.signbit(got), np.signbit(want))  # -0.0 vs 0.0
        detail = "" if ok else f"shape {got.shape} vs {want.shape}; got {got.ravel()[:8]}..., want {want.ravel()[:8]}..."
        self.check(name, ok, detail)


def as_str(v):
    return v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v)


# ---------------------------------------------------------------------------------------------------
# hdf5-basic: Tests/HDF5Tests/InteropTests.swift writes hdf5/basic.h5


def check_hdf5_basic(d, r):
    with h5py.File(os.path.join(d, "hdf5", "basic.h5"), "r") as f:
        i, j, k = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
        want = ((i * 20 + j * 5 + k) * 0.25 - 7).astype(np.float32)
        ds = f["f32"]
        r.check("f32 dtype", ds.dtype == np.float32, str(ds.dtype))
        r.check("f32 chunks", ds.chunks == (1, 2, 5), str(ds.chunks))
        r.check("f32 filters", ds.compression == "gzip" and ds.shuffle, f"{ds.compression} {ds.shuffle}")
        r.equal("f32 values", ds[()], want)

        ds = f["f16"]
        r.check("f16 dtype", ds.dtype == np.float16, str(ds.dtype))
        want = (np.arange(64, dtype=np.float32) - 32) / np.float32(3)
        r.equal("f16 values (numpy's round-to-nearest-even)", ds[()], want.astype(np.float16))
        special = np.array([0, -0.0, 65504, 65519, 65520, 1e-8, 6e-8, np.inf, -np.inf], dtype=np.float32)
        with np.errstate(over="ignore"):  # 65520 -> inf is the point of the check
            r.equal("f16 special values", f["f16_special"][()], special.astype(np.float16))

        r.check("i32 dtype", f["i32"].dtype == np.int32, str(f["i32"].dtype))
        r.equal("i32 values", f["i32"][()], ((np.arange(12) - 6) * 123456789).astype(np.int32).reshape(2, 6))
        r.equal("i32 extremes", f["i32_extremes"][()], np.array([-2**31, 2**31 - 1, 0, -1], dtype=np.int32))

        ds = f["strings"]
        r.check("strings maxshape", ds.maxshape == (None,), str(ds.maxshape))
        got = [as_str(s) for s in ds.asstr()[()]]
        want = ["" if n % 3 == 0 else f"prompt {n} — ü ✓ 🚀" for n in range(7)]
        r.check("strings values", got == want, f"{got} vs {want}")
        r.check("strings are UTF-8", h5py.check_string_dtype(ds.dtype).encoding == "utf-8", str(ds.dtype))

        ds = f["grow"]
        r.check("grow maxshape", ds.maxshape == (None, 3), str(ds.maxshape))
        r.equal("grow values", ds[()], (np.arange(15, dtype=np.float32) + 0.5).reshape(5, 3))

        i, j = np.meshgrid(np.arange(4), np.arange(6), indexing="ij")
        r.equal("slab values", f["slab"][()], (i * 10 + j).astype(np.float32))

        a = f["a/b/c"].attrs
        r.check("attr answer", int(a["answer"]) == 42 and np.asarray(a["answer"]).dtype == np.int64, repr(a["answer"]))
        r.check("attr ratio", float(a["ratio"]) == 0.1, repr(a["ratio"]))
        r.equal("attr positions", a["positions"], np.arange(-5, 0, dtype=np.int32))
        r.check("attr positions dtype", np.asarray(a["positions"]).dtype == np.int32, str(np.asarray(a["positions"]).dtype))
        r.equal("attr weights", a["weights"], np.array([0.5, -1.25, 3], dtype=np.float32))
        r.check("attr name (variable-length UTF-8)", as_str(a["name"]) == "Ünïcødé ✓", repr(a["name"]))
        r.check("attr fixed (fixed-length)", as_str(a["fixed"]) == "fixed-ascii", repr(a["fixed"]))


def _auroc(pos, neg):
    """Mann-Whitney AUROC with average ranks for ties (numpy only)."""
    x = np.concatenate([pos, neg])
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    xs = x[order]
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n0 = len(pos), len(neg)
    return (ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def check_analysis_run(d, r):
    """analysis.h5 + metrics.csv of the synthetic run AnalysisTests analysed: mean-diff directions,
    AUROC and Cohen's d recomputed from the activation caches with numpy."""
    import csv
    run = os.path.join(d, "analysis-run")
    a = h5py.File(os.path.join(run, "analysis.h5"), "r")
    r.check("format", as_str(a.attrs["format"]) == "ablab.analysis", a.attrs["format"])
    methods = as_str(a.attrs["methods"]).split(",")
    mi = methods.index("mean-diff")
    rows = list(csv.DictReader(open(os.path.join(run, "analysis", "metrics.csv"), newline="")))
    r.check("metrics.csv header", list(rows[0].keys()) == ["checkpoint", "layer", "position", "method", "metric", "value"], rows[0].keys())
    csv_auroc = {(x["checkpoint"], int(x["layer"]), int(x["position"])): float(x["value"])
                 for x in rows if x["method"] == "mean-diff" and x["metric"] == "auroc"}
    for name, g in a["checkpoints"].items():
        c = h5py.File(os.path.join(run, "activations", name + ".h5"), "r")
        label = np.array([as_str(v) for v in c["prompts/label"][:]])
        split = np.array([as_str(v) for v in c["prompts/split"][:]])
        cpos = list(c.attrs["positions"])
        h = label == "harmful"
        tr, te = split == "train", split == "test"
        for li, layer in enumerate(g["layers"][:]):
            for pi, pos in enumerate(g["positions"][:]):
                x = c["residual"][layer, :, cpos.index(pos), :].astype(np.float64)
                delta = x[tr & h].mean(0) - x[tr & ~h].mean(0)
                md = delta / np.linalg.norm(delta)
                got = g["directions/mean-diff"][li, pi].astype(np.float64)
                r.check(f"{name} L{layer} P{pos} mean-diff", abs(got @ md) > 1 - 1e-5, got @ md)
                sp, sn = x[te & h] @ md, x[te & ~h] @ md
                auc = _auroc(sp, sn)
                r.check(f"{name} L{layer} P{pos} auroc", abs(g["auroc"][li, pi, mi] - auc) < 1e-6, (g["auroc"][li, pi, mi], auc))
                r.check(f"{name} L{layer} P{pos} auroc csv", abs(csv_auroc[(as_str(g.attrs["checkpoint"]), int(layer), int(pos))] - auc) < 1e-9,
                        auc)
                pooled = np.sqrt(((len(sp) - 1) * sp.var(ddof=1) + (len(sn) - 1) * sn.var(ddof=1)) / (len(sp) + len(sn) - 2))
                cd = (sp.mean() - sn.mean()) / pooled
                r.check(f"{name} L{layer} P{pos} cohen_d", abs(g["cohen_d"][li, pi, mi] - cd) <= 1e-4 * max(1, abs(cd)),
                        (g["cohen_d"][li, pi, mi], cd))


# ---------------------------------------------------------------------------------------------------
# activation-cache: Tests/ActivationCacheTests/InteropTests.swift writes activation-run/ (two checkpoints)
# with the formula of Tests/ActivationCacheTests/Synthetic.swift; read_cache.py must summarise it.

CACHE_ATTRS = ["format", "format_version", "checkpoint", "model_path", "model_sha256", "architecture",
               "n_layers", "d_model", "system_prompt", "positions", "ablab_version", "created"]


def synthetic_value(l, i, p, k):
    """residual(l, i, p, k) = ((7l + 3i + 5p + k) mod 101 - 50) / 8 + (l if i even and k mod 4 == 0)."""
    v = ((7 * l + 3 * i + 5 * p + k) % 101 - 50) / 8.0
    return (v + np.where((i % 2 == 0) & (k % 4 == 0), l, 0)).astype(np.float32)


def check_activation_cache(d, r):
    run = os.path.join(d, "activation-run")
    n_prompts, n_layers, d_model, positions = 37, 3, 8, [-3, -2, -1]
    expected = {  # file stem -> (dtype, hooks, compressed)
        "step-1000": (np.float32, ["blocks.1.hook_attn_out"], True),
        "final": (np.float16, [], False),
    }
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(run, "activations", "*.h5")))
    r.check("checkpoint files", names == sorted(expected), str(names))
    leftovers = glob.glob(os.path.join(run, "activations", ".*"))
    r.check("no partial folders or temporary files left", leftovers == [], str(leftovers))
    i = np.arange(n_prompts)
    for stem, (dtype, hooks, compressed) in expected.items():
        with h5py.File(os.path.join(run, "activations", stem + ".h5"), "r") as f:
            a = f.attrs
            missing = [k for k in CACHE_ATTRS if k not in a]
            r.check(f"{stem}: schema attributes present", not missing, f"missing {missing}")
            if missing:
                continue
            r.check(f"{stem}: format", as_str(a["format"]) == "ablab.activations", repr(a["format"]))
            r.check(f"{stem}: format_version", int(a["format_version"]) == 1, repr(a["format_version"]))
            r.check(f"{stem}: checkpoint", as_str(a["checkpoint"]) == stem, repr(a["checkpoint"]))
            r.check(f"{stem}: model_path", as_str(a["model_path"]) == "models/synthetic.gguf", repr(a["model_path"]))
            r.check(f"{stem}: model_sha256", as_str(a["model_sha256"]) == "ab" * 32, repr(a["model_sha256"]))
            r.check(f"{stem}: architecture", as_str(a["architecture"]) == "llama", repr(a["architecture"]))
            r.check(f"{stem}: n_layers/d_model", int(a["n_layers"]) == n_layers and int(a["d_model"]) == d_model,
                    f"{a['n_layers']} {a['d_model']}")
            r.check(f"{stem}: system_prompt", as_str(a["system_prompt"]) == "You are helpful.", repr(a["system_prompt"]))
            r.equal(f"{stem}: positions", a["positions"], np.array(positions, dtype=np.int32))
            r.check(f"{stem}: positions dtype", np.asarray(a["positions"]).dtype == np.int32, str(np.asarray(a["positions"]).dtype))
            r.check(f"{stem}: created is ISO 8601 UTC", as_str(a["created"]).endswith("Z") and "T" in as_str(a["created"]), repr(a["created"]))

            p = f["prompts"]
            got = {k: [as_str(s) for s in p[k].asstr()[()]] for k in ("id", "text", "label", "split")}
            r.check(f"{stem}: prompts/id", got["id"] == [f"p{n}" for n in i], str(got["id"][:3]))
            r.check(f"{stem}: prompts/text", got["text"] == [f"Prompt {n}: ü ✓ 🚀" if n % 5 == 0 else f"prompt number {n}" for n in i], str(got["text"][:3]))
            r.check(f"{stem}: prompts/label", got["label"] == ["harmful" if n % 2 == 0 else "harmless" for n in i], str(got["label"][:3]))
            r.check(f"{stem}: prompts/split", got["split"] == ["test" if n % 3 == 0 else ("" if n % 7 == 0 else "train") for n in i], str(got["split"][:8]))
            r.equal(f"{stem}: prompts/n_tokens", p["n_tokens"][()], (10 + i % 7).astype(np.int32))
            r.check(f"{stem}: prompts/n_tokens dtype", p["n_tokens"].dtype == np.int32, str(p["n_tokens"].dtype))

            res = f["residual"]
            r.check(f"{stem}: residual shape", res.shape == (n_layers + 1, n_prompts, 3, d_model), str(res.shape))
            r.check(f"{stem}: residual dtype", res.dtype == dtype, str(res.dtype))
            r.check(f"{stem}: residual chunks = one layer", res.chunks == (1, min(n_prompts, 256), 3, d_model), str(res.chunks))
            r.check(f"{stem}: residual filters", (res.compression == "gzip" and res.shuffle) == compressed, f"{res.compression} {res.shuffle}")
            L, I, P, K = np.meshgrid(np.arange(n_layers + 1), i, np.arange(3), np.arange(d_model), indexing="ij")
            want = synthetic_value(L, I, P, K)
            r.equal(f"{stem}: residual values", res[()], want.astype(dtype))
            got_hooks = sorted(f["hooks"].keys()) if "hooks" in f else []
            r.check(f"{stem}: hook list", got_hooks == sorted(hooks), str(got_hooks))
            for h, name in enumerate(sorted(hooks)):
                I3, P3, K3 = np.meshgrid(i, np.arange(3), np.arange(d_model), indexing="ij")
                r.equal(f"{stem}: hooks/{name}", f["hooks"][name][()], synthetic_value(100 + h, I3, P3, K3).astype(dtype))

    # read_cache.py: its numbers against the formula, and its command line.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import read_cache
    summary = read_cache.summarize(run)
    r.check("read_cache: checkpoints", sorted(summary) == sorted(expected), str(sorted(summary)))
    L, I, P, K = np.meshgrid(np.arange(n_layers + 1), i, np.arange(3), np.arange(d_model), indexing="ij")
    norms = np.linalg.norm(synthetic_value(L, I, P, K).astype(np.float64), axis=-1)  # [L+1, N, P]
    for stem in summary:
        _, labels, got = summary[stem]
        for label, rows in (("harmful", i % 2 == 0), ("harmless", i % 2 == 1)):
            r.check(f"read_cache: {stem} {label} mean norms", np.allclose(got[label], norms[:, rows].mean(axis=1), rtol=1e-12, atol=0),
                    f"{got[label][:, -1]} vs {norms[:, rows].mean(axis=1)[:, -1]}")
    import subprocess
    out = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "read_cache.py"), run],
                         capture_output=True, text=True)
    r.check("read_cache.py exits 0", out.returncode == 0, out.stderr[-500:])
    r.check("read_cache.py prints both checkpoints", "== final" in out.stdout and "== step-1000" in out.stdout, out.stdout[:300])


# ---------------------------------------------------------------------------------------------------

CHECKS = [
    ("hdf5-basic", ["hdf5/basic.h5"], check_hdf5_basic),
    ("activation-cache", ["activation-run/activations/*.h5"], check_activation_cache),
    ("analysis-run", ["analysis-run/analysis.h5", "analysis-run/activations/*.h5"], check_analysis_run),
]


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    d = argv[1]
    r = Report()
    ran, skipped = [], []
    for kind, needs, fn in CHECKS:
        missing = [n for n in needs if not glob.glob(os.path.join(d, n))]
        if missing:
            skipped.append(kind)
            print(f"SKIPPED {kind}: missing {', '.join(missing)} in {d}")
            continue
        r.kind = kind
        before = (r.passed, r.failed)
        try:
            fn(d, r)
        except Exception as e:  # a crash in a check is a failure of that kind, not of the script
            r.failed += 1
            print(f"  FAIL [{kind}] raised {type(e).__name__}: {e}")
            traceback.print_exc()
        ran.append(kind)
        print(f"{kind}: {r.passed - before[0]} passed, {r.failed - before[1]} failed")
    print(f"interop: {r.passed} passed, {r.failed} failed, {len(skipped)} kinds skipped"
          + (f" ({', '.join(skipped)})" if skipped else ""))
    if r.failed:
        return 1
    return 0 if ran else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
