#!/usr/bin/env python3
"""Test fixtures for the mechanism analyses: COSMIC's cache-only selection scores and the calibration
of a system's P(refused) against a reference judge.

COSMIC (Siu et al. 2025, arXiv 2506.00085), written here from the paper's definitions with numpy only:
  candidate r(l, p) = mean(harmful fit) - mean(harmless fit) at residual layer l, position p;
  L_low = ceil(10 % of L) residual layers 1..L with the lowest cosine between the harmful and harmless
          fit means at the last token (ties: lower layer first);
  M+ / M- = mean over the scoring prompts of a class and over j in L_low of the last-token activation;
  b+ = M+ / |M+|, b- = M- / |M-|  (baseline vectors);
  ablation = cos(M+ - (M+ . r^) r^, b-)              (direction ablated at every layer);
  addition = cos(M- + f_l r, b+),  f_l = |{j in L_low : j >= l}| / |L_low|   (r added entering block l);
  score = ablation + addition; eligible: l < 0.8 L; chosen: the eligible maximum.

Calibration, from scikit-learn: roc_auc_score, brier_score_loss, calibration_curve(strategy="uniform",
n_bins=10) for the reliability bins, and the expected calibration error sum_b n_b / n |true_b - pred_b|
from those bins (bin counts with numpy's searchsorted, as calibration_curve bins).

Run from the repository root:  .venv-ref/bin/python notebooks-scripts/fixtures_mechanisms.py
Writes Tests/AnalysisTests/Fixtures/mechanisms.json (small).
"""
import json
import math
import os

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "AnalysisTests", "Fixtures", "mechanisms.json")


def cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def cosmic_case(seed, n_layers, d, positions, n_fit, n_score):
    rng = np.random.default_rng(seed)
    n = 2 * (n_fit + n_score)
    labels = ["harmful"] * (n_fit + n_score) + ["harmless"] * (n_fit + n_score)
    roles = (["fit"] * n_fit + ["score"] * n_score) * 2
    # [L+1, N, P, d] float32 activations with a planted class offset that grows with depth
    base = rng.normal(size=(n_layers + 1, n, len(positions), d)) + 2.0
    planted = rng.normal(size=d)
    for l in range(n_layers + 1):
        for i in range(n):
            if labels[i] == "harmful":
                base[l, i] += (l / n_layers) * planted * (1.0 + 0.1 * np.arange(len(positions)))[:, None]
    acts = base.astype(np.float32)
    idx = lambda lab, role: [i for i in range(n) if labels[i] == lab and roles[i] == role]
    fh, fb, sh, sb = idx("harmful", "fit"), idx("harmless", "fit"), idx("harmful", "score"), idx("harmless", "score")
    a64 = acts.astype(np.float64)
    last = positions.index(-1)
    sims = [(l, cos(a64[l, fh, last].mean(0), a64[l, fb, last].mean(0))) for l in range(1, n_layers + 1)]
    k = max(1, math.ceil(0.1 * n_layers))
    low = sorted(l for l, _ in sorted(sims, key=lambda t: (t[1], t[0]))[:k])
    m_plus = np.mean([a64[j, sh, last].mean(0) for j in low], axis=0)
    m_minus = np.mean([a64[j, sb, last].mean(0) for j in low], axis=0)
    b_plus, b_minus = m_plus / np.linalg.norm(m_plus), m_minus / np.linalg.norm(m_minus)
    scores = []
    for l in range(1, n_layers + 1):
        f = sum(1 for j in low if j >= l) / len(low)
        for pi, p in enumerate(positions):
            r = a64[l, fh, pi].mean(0) - a64[l, fb, pi].mean(0)
            rh = r / np.linalg.norm(r)
            abl = m_plus - (m_plus @ rh) * rh
            add = m_minus + f * r
            a = float(abl @ b_minus / np.linalg.norm(abl))
            b = float(add @ b_plus / np.linalg.norm(add))
            scores.append({"layer": l, "position": p, "ablation": a, "addition": b, "eligible": l < 0.8 * n_layers})
    elig = [s for s in scores if s["eligible"]]
    best = max(elig, key=lambda s: s["ablation"] + s["addition"])
    return {
        "name": f"cosmic-{seed}", "n_layers": n_layers, "d": d, "positions": positions,
        "activations": acts.reshape(-1).tolist(), "shape": list(acts.shape),
        "fit_harmful": fh, "fit_harmless": fb, "score_harmful": sh, "score_harmless": sb,
        "low_layers": low, "scores": scores, "chosen": {"layer": best["layer"], "position": best["position"]},
    }


def calibration_case(name, p, y):
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    edges = np.linspace(0.0, 1.0, 11)
    ids = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(ids, minlength=10)
    nz = counts[counts > 0]
    ece = float(np.sum(nz / len(p) * np.abs(prob_true - prob_pred)))
    return {
        "name": name, "p": p.tolist(), "y": y.tolist(),
        "auroc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p)),
        "prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist(), "counts": nz.tolist(), "ece": ece,
    }


def main():
    rng = np.random.default_rng(7)
    y1 = rng.integers(0, 2, size=60)
    p1 = np.clip(0.3 * y1 + rng.uniform(0, 0.7, size=60), 0, 1)
    # values on bin edges (0.1, 0.3 as linspace makes them, 0, 1) and ties between the classes
    p2 = [0.0, 0.1, 0.1, 0.2, 0.30000000000000004, 0.3, 0.5, 0.5, 0.7, 0.9, 1.0, 1.0, 0.05, 0.95]
    y2 = [0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1]
    fixture = {
        "cosmic": [cosmic_case(1, 10, 5, [-3, -2, -1], 6, 5), cosmic_case(2, 20, 4, [-2, -1], 4, 3)],
        "calibration": [calibration_case("random", p1, y1), calibration_case("edges-and-ties", p2, y2)],
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
