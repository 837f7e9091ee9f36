"""Dense k-reciprocal Jaccard distance written from the community formulation
(protocols.md §5.2): N × N arrays, per-row Python loops. Oracle for the tests and the
dense baseline of benchmarks/bench_cluster.py."""

from __future__ import annotations

import numpy as np


def dense_jaccard(x: np.ndarray, k1: int = 30, k2: int = 6, is_infrared=None) -> np.ndarray:
    x = x.astype(np.float32)
    n = len(x)
    d2 = ((x[:, None, :] - x[None]) ** 2).sum(-1) if n <= 2000 else None
    if d2 is None:
        sq = (x * x).sum(1)
        d2 = sq[:, None] + sq[None] - 2 * x @ x.T
    init = np.argsort(d2, axis=1, kind="stable")[:, :k1]  # k1 columns only (the quirk)
    del d2

    def krecip(i, k):
        fwd = init[i, : k + 1]
        back = init[fwd, : k + 1]
        return fwd[np.where(back == i)[0]]

    h = int(np.around(k1 / 2))
    V = np.zeros((n, n), np.float32)
    for i in range(n):
        R = krecip(i, k1)
        E = R
        for c in R:
            Rc = krecip(c, h)
            if len(np.intersect1d(Rc, R)) > 2 / 3 * len(Rc):
                E = np.append(E, Rc)
        E = np.unique(E)
        d = 2 - 2 * (x[i] @ x[E].T)
        w = np.exp(-(d - d.min()))  # softmax, as torch computes it
        V[i, E] = w / w.sum()
    if k2 != 1:
        Vq = np.zeros_like(V)
        for i in range(n):
            nb = init[i, :k2]
            if is_infrared is None:
                Vq[i] = V[nb].mean(0)
            else:
                ir, vis = nb[is_infrared[nb]], nb[~is_infrared[nb]]
                means = [V[s].mean(0) for s in (vis, ir) if len(s)]
                Vq[i] = sum(means) / len(means)
        V = Vq
    inv = [np.where(V[:, k] != 0)[0] for k in range(n)]
    J = np.zeros((n, n), np.float32)
    for i in range(n):
        tmp = np.zeros(n, np.float32)
        for k in np.where(V[i] != 0)[0]:
            tmp[inv[k]] += np.minimum(V[i, k], V[inv[k], k])
        J[i] = 1 - tmp / (2 - tmp)
    J[J < 0] = 0
    return J
