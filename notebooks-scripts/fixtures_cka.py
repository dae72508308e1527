#!/usr/bin/env python3
"""Test fixture for the debiased linear CKA (unbiased HSIC estimator).

Reference: numpy, written here from the unbiased HSIC estimator of Song et al. (2012), eq. (5):
  HSIC_u(K, L) = [tr(K~ L~) + (1' K~ 1)(1' L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1' K~ L~ 1] / (n (n-3)),
with K~, L~ the linear Gram matrices of the column-centred representations with their diagonals set to 0;
debiased CKA = HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L)) (Kornblith et al. 2019, appendix; Nguyen et al. 2021).
Also the ordinary (biased) linear CKA, for the contrast: with fewer prompts than dimensions it is high
even for independent random representations, the debiased estimate is near 0.

Run from the repository root:  .venv-ref/bin/python notebooks-scripts/fixtures_cka.py
Writes Tests/AnalysisTests/Fixtures/cka_debiased.json (small).
"""
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "AnalysisTests", "Fixtures", "cka_debiased.json")


def hsic_u(k, l):
    n = k.shape[0]
    k = k.copy(); l = l.copy()
    np.fill_diagonal(k, 0); np.fill_diagonal(l, 0)
    one = np.ones(n)
    t1 = np.trace(k @ l)
    t2 = (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
    t3 = 2.0 / (n - 2) * (one @ k @ l @ one)
    return (t1 + t2 - t3) / (n * (n - 3))


def debiased_cka(x, y):
    x = x - x.mean(0); y = y - y.mean(0)
    k, l = x @ x.T, y @ y.T
    return hsic_u(k, l) / np.sqrt(hsic_u(k, k) * hsic_u(l, l))


def linear_cka(x, y):
    x = x - x.mean(0); y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def main():
    g = np.random.default_rng(2026)
    cases = []
    # (n prompts, d1, d2, shared signal): independent wide representations, related ones, narrow ones
    for name, n, d1, d2, shared in [("independent_wide", 12, 40, 30, 0.0), ("related", 16, 24, 10, 1.0),
                                    ("narrow", 30, 4, 3, 0.5), ("tiny", 5, 3, 2, 0.8)]:
        z = g.standard_normal((n, 3))
        x = (shared * z @ g.standard_normal((3, d1)) + g.standard_normal((n, d1))).astype(np.float32)
        y = (shared * z @ g.standard_normal((3, d2)) + g.standard_normal((n, d2))).astype(np.float32)
        xd, yd = x.astype(np.float64), y.astype(np.float64)
        cases.append(dict(name=name, x=x.tolist(), y=y.tolist(), debiased=float(debiased_cka(xd, yd)),
                          linear=float(linear_cka(xd, yd))))
    with open(OUT, "w") as f:
        json.dump(dict(cases=cases), f, indent=0)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
