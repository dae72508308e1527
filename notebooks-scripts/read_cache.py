#!/usr/bin/env python3
"""Summarise an ablab activation cache with h5py + numpy (no ablab code).

Usage: read_cache.py RUN_DIR

For every finished checkpoint file RUN_DIR/activations/<checkpoint>.h5 it prints, per layer
(0 = embeddings, l = output of block l-1) and per cached position, the mean L2 norm of the residual
stream over harmful and over harmless prompts. See Sources/ActivationCache/SCHEMA.md for the format.
"""
import glob
import os
import sys

import h5py
import numpy as np


def as_str(v):
    return v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v)


def summarize_file(path):
    """Returns (attrs, labels, norms) where norms[label] is an array [n_layers + 1, P] of mean norms."""
    with h5py.File(path, "r") as f:
        if as_str(f.attrs.get("format", "")) != "ablab.activations":
            raise ValueError(f"{path}: not an ablab activation cache")
        if int(f.attrs["format_version"]) != 1:
            raise ValueError(f"{path}: format_version {int(f.attrs['format_version'])} is not 1")
        attrs = {k: f.attrs[k] for k in f.attrs}
        labels = np.array([as_str(s) for s in f["prompts/label"].asstr()[()]])
        res = f["residual"]  # [n_layers + 1, N, P, d_model]
        norms = {}
        for label in sorted(set(labels)):
            rows = np.flatnonzero(labels == label)
            per_layer = []
            for layer in range(res.shape[0]):
                x = res[layer].astype(np.float64)[rows]  # one layer at a time: [n, P, d]
                per_layer.append(np.linalg.norm(x, axis=-1).mean(axis=0))
            norms[label] = np.array(per_layer)
        return attrs, labels, norms


def summarize(run_dir):
    """{checkpoint file stem: (attrs, labels, norms)} for the finished files of a run."""
    files = sorted(p for p in glob.glob(os.path.join(run_dir, "activations", "*.h5"))
                   if not os.path.basename(p).startswith("."))
    return {os.path.basename(p)[:-3]: summarize_file(p) for p in files}


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    out = summarize(argv[1])
    if not out:
        print(f"no finished activation caches in {argv[1]}/activations")
        return 1
    for name, (attrs, labels, norms) in out.items():
        positions = [int(p) for p in attrs["positions"]]
        print(f"== {name}: checkpoint {as_str(attrs['checkpoint'])}, {as_str(attrs['architecture'])}, "
              f"{int(attrs['n_layers'])} layers, d_model {int(attrs['d_model'])}, {len(labels)} prompts "
              + ", ".join(f"{(labels == l).sum()} {l}" for l in sorted(norms)))
        groups = [l for l in ("harmful", "harmless") if l in norms] or sorted(norms)
        header = "layer " + " ".join(f"{g[:8]:>8}@{p:<3}" for p in positions for g in groups)
        print(header)
        for layer in range(next(iter(norms.values())).shape[0]):
            cells = " ".join(f"{norms[g][layer, j]:12.4f}" for j in range(len(positions)) for g in groups)
            print(f"{layer:5d} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
