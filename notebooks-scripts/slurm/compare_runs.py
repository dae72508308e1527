"""Compares two run folders of the same study (make test-slurm: a one-process `ablab run` and a Slurm run).

Equal means: the same activation caches (`activations/<checkpoint>.h5`, shard files aside) and
`analysis.h5`, every dataset with the same dtype, shape and bytes and the same attributes except the
file's creation time; and byte-identical generations (`generations/*.jsonl`), judgments, self-judgments,
agreement tables, analysis tables and the model-based layer selection. Exits 1 naming every difference.

usage: compare_runs.py REFERENCE_RUN OTHER_RUN
"""
import glob
import os
import sys

import h5py
import numpy as np


def h5_items(path):
    """{name: (attrs, dataset or None)} for every group and dataset of an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            attrs = {k: np.asarray(v).tobytes() for k, v in obj.attrs.items() if k != "created"}
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                out[name] = (attrs, (data.dtype.str, data.shape, np.asarray(data).tobytes()))
            else:
                out[name] = (attrs, None)
        visit("/", f)
        f.visititems(visit)
    return out


def compare_h5(a, b, problems):
    ia, ib = h5_items(a), h5_items(b)
    if sorted(ia) != sorted(ib):
        problems.append(f"{b}: objects differ from {a}: {sorted(set(ia) ^ set(ib))}")
        return 0
    n = 0
    for name in sorted(ia):
        (aa, da), (ab, db) = ia[name], ib[name]
        if aa != ab:
            problems.append(f"{b}: attributes of {name} differ")
        if da is not None:
            n += 1
            if da[:2] != db[:2]:
                problems.append(f"{b}: {name} is {db[0]} {db[1]}, reference {da[0]} {da[1]}")
            elif da[2] != db[2]:
                problems.append(f"{b}: {name} differs in value")
    return n


def main():
    ref, other = sys.argv[1], sys.argv[2]
    problems = []
    caches = sorted(p for p in glob.glob(os.path.join(ref, "activations", "*.h5")) if ".shard-" not in p)
    if not caches:
        problems.append(f"{ref}: no activation cache")
    datasets = 0
    for p in caches + [os.path.join(ref, "analysis.h5")]:
        q = os.path.join(other, os.path.relpath(p, ref))
        if not os.path.exists(q):
            problems.append(f"{q}: missing")
            continue
        datasets += compare_h5(p, q, problems)
    patterns = ["generations/*.jsonl", "judgments.csv", "self_judgment.csv", "self_judgment_summary.csv",
                "agreement/*.csv", "analysis/*.csv"]
    files = 0
    for pat in patterns:
        mine = sorted(os.path.relpath(p, ref) for p in glob.glob(os.path.join(ref, pat)))
        theirs = sorted(os.path.relpath(p, other) for p in glob.glob(os.path.join(other, pat)))
        if not mine:
            problems.append(f"{ref}: no {pat}")
        if mine != theirs:
            problems.append(f"{other}: {pat} lists {theirs}, reference {mine}")
        for rel in sorted(set(mine) & set(theirs)):
            files += 1
            with open(os.path.join(ref, rel), "rb") as fa, open(os.path.join(other, rel), "rb") as fb:
                if fa.read() != fb.read():
                    problems.append(f"{os.path.join(other, rel)}: differs from {os.path.join(ref, rel)}")
    if not os.path.exists(os.path.join(other, "report.pdf")):
        problems.append(f"{other}: no report.pdf")
    if problems:
        for p in problems:
            print("compare_runs:", p, file=sys.stderr)
        sys.exit(1)
    lines = sum(sum(1 for _ in open(p, "rb")) for p in glob.glob(os.path.join(ref, "generations", "*.jsonl")))
    print(f"compare_runs: {other} equals {ref}: {datasets} HDF5 datasets bit for bit, {files} files byte for byte "
          f"({lines} generated answers)", file=sys.stderr)


if __name__ == "__main__":
    main()
