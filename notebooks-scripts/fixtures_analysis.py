#!/usr/bin/env python3
"""Reference values for Tests/AnalysisTests from numpy / scikit-learn / scipy.

Synthetic activations with a planted refusal direction (harmful = +signal/2 along it, harmless =
-signal/2, anisotropic Gaussian noise, a common offset so that centring matters). Everything is computed
in float64 from the float32 values that are written to the fixture (the Swift side reads Float).

Settings the Swift implementation must match (stated here so results are comparable):
  * PCA: sklearn PCA(svd_solver="full") on the pooled harmful+harmless TRAIN rows; explained variance
    with the n-1 denominator; only the first r = min(n-1, d) components are kept (the rest are zero
    after centring). Every axis is oriented so that axis . delta >= 0, delta = mean(train harmful) -
    mean(train harmless).
  * mean-diff direction = delta / |delta|; pc1 = first oriented axis.
  * Separation on TEST rows of the projection score x . direction (no centring): Cohen's d with the
    pooled SD (ddof=1 per class), AUROC = sklearn roc_auc_score with harmful = 1.
  * Probe: PC scores (x - pca.mean_) @ oriented_axes[:k].T, StandardScaler fit on train (population
    SD), LogisticRegression(C=1.0, solver="lbfgs", tol=1e-12, max_iter=100000) (L2, intercept not
    penalised); accuracy = mean(predict(test) == label), harmful = 1.
  * Bootstrap / split-half: SplitMix64 re-implemented below from its published definition; bounded(n) =
    (next() * n) >> 64; replicate = n_h harmful draws then n_b harmless draws from one stream seeded with
    `seed`; split-half shuffles harmful then harmless indices (Fisher-Yates from the end, j =
    bounded(i+1)) with a stream seeded `seed + 1`, half A = first n//2 of each class. Percentiles are
    numpy's default (linear).
  * Linear CKA (Kornblith et al. 2019): centre columns, ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F).

Run from the repository root:  .venv-ref/bin/python notebooks-scripts/fixtures_analysis.py
"""
import json
import os

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "AnalysisTests", "Fixtures",
                   "analysis_cases.json")
MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def bounded(self, n):
        return (self.next() * n) >> 64

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = self.bounded(i + 1)
            a[i], a[j] = a[j], a[i]


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def short(a):
    """float32 values as the shortest decimals that read back to the same float32 (keeps the file small)."""
    return [[float("%.9g" % v) for v in row] for row in np.asarray(a)]


def make_data(d, n_train, n_test, signal, seed):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = 1.0 / np.sqrt(np.arange(1, d + 1))  # distinct noise variances -> well separated PCs
    planted = rng.standard_normal(d)
    planted /= np.linalg.norm(planted)
    offset = 3.0 * rng.standard_normal(d)

    def sample(n, sign):
        noise = (rng.standard_normal((n, d)) * scales) @ basis.T
        return f32(noise + offset + sign * 0.5 * signal * planted)

    return dict(train_harmful=sample(n_train, 1), train_harmless=sample(n_train, -1),
                test_harmful=sample(n_test, 1), test_harmless=sample(n_test, -1), planted=planted)


def direction_fit(xh, xb):
    """(mean-diff unit vector, oriented pc1, delta) of one train set."""
    delta = xh.mean(0) - xb.mean(0)
    x = np.vstack([xh, xb])
    z = x - x.mean(0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    v = vt[0] if vt[0] @ delta >= 0 else -vt[0]
    return delta / np.linalg.norm(delta), v, delta


def cohen_d(a, b):
    na, nb = len(a), len(b)
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return float((a.mean() - b.mean()) / pooled)


def case(name, d, n_train, n_test, signal, seed, probe_ks, boot_seed, replicates):
    data = make_data(d, n_train, n_test, signal, seed)
    xh, xb = data["train_harmful"], data["train_harmless"]
    th, tb = data["test_harmful"], data["test_harmless"]
    x = np.vstack([xh, xb])
    n = x.shape[0]
    r = min(n - 1, d)
    delta = xh.mean(0) - xb.mean(0)

    pca = PCA(svd_solver="full").fit(x)
    comps = pca.components_[:r].copy()
    signs = np.where(comps @ delta < 0, -1.0, 1.0)
    comps *= signs[:, None]
    ev = pca.explained_variance_[:r]
    ratio = pca.explained_variance_ratio_[:r]
    pr = ev.sum() ** 2 / (ev ** 2).sum()
    proj = comps @ delta
    share = np.cumsum(proj ** 2) / (delta @ delta)

    md = delta / np.linalg.norm(delta)
    pc1 = comps[0]
    seps = {}
    for method, v in (("mean-diff", md), ("pc1", pc1)):
        sh, sb = th @ v, tb @ v
        y = np.r_[np.ones(len(sh)), np.zeros(len(sb))]
        seps[method] = dict(cohen_d=cohen_d(sh, sb), auroc=float(roc_auc_score(y, np.r_[sh, sb])))

    ytr = np.r_[np.ones(len(xh)), np.zeros(len(xb))]
    xt = np.vstack([th, tb])
    yte = np.r_[np.ones(len(th)), np.zeros(len(tb))]
    probes = []
    for k in probe_ks:
        s_tr = (x - pca.mean_) @ comps[:k].T
        s_te = (xt - pca.mean_) @ comps[:k].T
        sc = StandardScaler().fit(s_tr)
        clf = LogisticRegression(C=1.0, solver="lbfgs", tol=1e-12, max_iter=100000).fit(sc.transform(s_tr), ytr)
        acc = float((clf.predict(sc.transform(s_te)) == yte).mean())
        probes.append(dict(k=k, accuracy=acc, coef=clf.coef_[0].tolist(), intercept=float(clf.intercept_[0])))

    # Bootstrap and split half, straight in feature space.
    rng = SplitMix64(boot_seed)
    nh, nb = len(xh), len(xb)
    cos_md, cos_pc = [], []
    for _ in range(replicates):
        ih = [rng.bounded(nh) for _ in range(nh)]
        ib = [rng.bounded(nb) for _ in range(nb)]
        m_b, p_b, _ = direction_fit(xh[ih], xb[ib])
        cos_md.append(float(m_b @ md))
        cos_pc.append(float(p_b @ pc1))
    rng2 = SplitMix64(boot_seed + 1)
    ph, pb = list(range(nh)), list(range(nb))
    rng2.shuffle(ph)
    rng2.shuffle(pb)
    ma, pa, _ = direction_fit(xh[ph[: nh // 2]], xb[pb[: nb // 2]])
    mb, pbv, _ = direction_fit(xh[ph[nh // 2:]], xb[pb[nb // 2:]])

    def summary(cs, half):
        return dict(cosines=cs, mean=float(np.mean(cs)), lower=float(np.percentile(cs, 2.5)),
                    upper=float(np.percentile(cs, 97.5)), split_half=float(half))

    return dict(
        name=name, d=d, signal=signal,
        train_harmful=short(xh), train_harmless=short(xb), test_harmful=short(th), test_harmless=short(tb),
        planted=data["planted"].tolist(),
        rank=r, explained_variance=ev.tolist(), explained_variance_ratio=ratio.tolist(),
        cumulative=np.cumsum(ratio).tolist(), participation_ratio=float(pr),
        components=comps[: max(probe_ks)].tolist(), mean_diff_share=share.tolist(),
        mean_diff=md.tolist(), pc1=pc1.tolist(), cos_md_pc1=float(md @ pc1),
        separation=seps, probes=probes,
        stability=dict(seed=boot_seed, replicates=replicates,
                       mean_diff=summary(cos_md, ma @ mb), pc1=summary(cos_pc, pa @ pbv)),
    )


def linear_cka(x, y):
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def main():
    cases = [
        case("moderate", d=24, n_train=40, n_test=20, signal=1.2, seed=11, probe_ks=[1, 2, 4, 8, 16],
             boot_seed=7, replicates=40),
        case("wide", d=64, n_train=20, n_test=15, signal=2.0, seed=12, probe_ks=[1, 2, 4, 8, 16, 32],
             boot_seed=8, replicates=40),
        case("strong", d=24, n_train=40, n_test=20, signal=8.0, seed=13, probe_ks=[1, 2, 4, 8],
             boot_seed=9, replicates=40),
    ]
    # CKA and score correlation between two widths on the same prompts: the "moderate" train rows
    # (width 24) and a noisy nonlinear read-out of them (width 16).
    rng = np.random.default_rng(21)
    xa = np.vstack([np.array(cases[0]["train_harmful"]), np.array(cases[0]["train_harmless"])])
    a = rng.standard_normal((24, 16)) / np.sqrt(24)
    ya = f32(np.tanh(xa @ a) + 0.3 * rng.standard_normal((xa.shape[0], 16)))
    na = len(cases[0]["train_harmful"])
    da = np.array(cases[0]["mean_diff"])
    db = ya[:na].mean(0) - ya[na:].mean(0)
    db /= np.linalg.norm(db)
    cka = dict(x=short(xa), y=short(ya), harmful_rows=na, cka=linear_cka(xa, ya),
               pearson_scores=float(stats.pearsonr(xa @ da, ya @ db).statistic))

    ties_pos = [1.0, 2.0, 2.0, 3.0, 5.0, 0.5]
    ties_neg = [0.0, 2.0, 2.0, 3.0, 1.0, 1.0, 0.5]
    ties = dict(pos=ties_pos, neg=ties_neg,
                auroc=float(roc_auc_score(np.r_[np.ones(6), np.zeros(7)], np.r_[ties_pos, ties_neg])),
                cohen_d=cohen_d(np.array(ties_pos), np.array(ties_neg)),
                percentile_2_5=float(np.percentile(ties_neg, 2.5)), percentile_97_5=float(np.percentile(ties_neg, 97.5)))

    g = SplitMix64(1234567)
    sm = dict(seed=1234567, outputs=[str(g.next()) for _ in range(5)])
    g = SplitMix64(42)
    sm["bounded_seed"] = 42
    sm["bounded_10"] = [g.bounded(10) for _ in range(20)]

    out = dict(cases=cases, cka=cka, ties=ties, splitmix64=sm)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
