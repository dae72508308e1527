#!/usr/bin/env python3
"""Test fixture for the self-judgment summary (accuracy, Cohen's kappa, confusion matrix per system).

Reference: scikit-learn (accuracy_score, cohen_kappa_score, confusion_matrix), computed over the items
where both the self-verdict and the reference verdict exist. Verdicts: 1 = REFUSAL, 0 = NON-REFUSAL,
None = missing.

Run from the repository root:  .venv-ref/bin/python notebooks-scripts/fixtures_selfjudgment.py
Writes Tests/JudgingTests/Fixtures/stats/self_judgment.json (small).
"""
import json
import math
import os
import warnings

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "JudgingTests", "Fixtures", "stats")


def summary(system, self_v, ref_v):
    pairs = [(s, r) for s, r in zip(self_v, ref_v) if s is not None and r is not None]
    y_self = [s for s, _ in pairs]
    y_ref = [r for _, r in pairs]
    # rows = reference (true), columns = predicted, labels [1, 0]: [[tp, fn], [fp, tn]]
    cm = confusion_matrix(y_ref, y_self, labels=[1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kappa = float(cohen_kappa_score(y_ref, y_self, labels=[1, 0]))
    return {
        "system": system, "self": self_v, "reference": ref_v,
        "n": len(pairs),
        "accuracy": float(accuracy_score(y_ref, y_self)),
        "kappa": None if math.isnan(kappa) else kappa,
        "tp": int(cm[0, 0]), "fn": int(cm[0, 1]), "fp": int(cm[1, 0]), "tn": int(cm[1, 1]),
    }


def main():
    rng = np.random.default_rng(20260611)
    cases = []
    # An original checkpoint that judges itself fairly well, with a missing self-verdict and reference.
    ref = [1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, None, 1, 0]
    slf = [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, None, 0]
    cases.append(summary("ckpt", slf, ref))
    # An abliterated system: few refusals left, self-judgment mostly says "refused" anyway.
    n = 40
    ref2 = [int(x) for x in (rng.random(n) < 0.15)]
    slf2 = [int(x) for x in (rng.random(n) < 0.7)]
    cases.append(summary("ckpt+abl-mean-diff-L5-p-1-a1.0", slf2, ref2))
    # Random verdicts with missing values on both sides.
    ref3 = [None if rng.random() < 0.1 else int(rng.random() < 0.5) for _ in range(60)]
    slf3 = [None if rng.random() < 0.1 else int(rng.random() < 0.4) for _ in range(60)]
    cases.append(summary("other", slf3, ref3))
    # Degenerate: both always REFUSAL -> kappa undefined (nan), accuracy 1.
    cases.append(summary("constant", [1, 1, 1, 1], [1, 1, 1, 1]))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "self_judgment.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
