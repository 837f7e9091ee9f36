"""Dense EMCC distance written from its definition (docs/methods/ecul.md) with N × N
arrays and per-row loops: the oracle of tests/test_emcc.py."""

from __future__ import annotations

import numpy as np


def dense_encodings(x: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """(knn order (N, N), V (N, N)): softmax(−d) over each expanded k-reciprocal set."""
    n = len(x)
    d2 = ((x[:, None, :] - x[None]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1, kind="stable")
    init = order[:, :k1]  # k1 columns only (the community quirk)

    def krecip(i, k):
        fwd = init[i, : k + 1]
        return fwd[np.where(init[fwd, : k + 1] == i)[0]]

    V = np.zeros((n, n), np.float64)
    for i in range(n):
        R = krecip(i, k1)
        E = R
        for c in R:
            Rc = krecip(c, int(np.around(k1 / 2)))
            if len(np.intersect1d(Rc, R)) > 2 / 3 * len(Rc):
                E = np.append(E, Rc)
        E = np.unique(E)
        w = np.exp(-(2 - 2 * (x[i] @ x[E].T)))
        V[i, E] = w / w.sum()
    return order, V


def dense_emcc(x, k1, k2, k3=None, groups=None) -> np.ndarray:
    x = np.asarray(x, np.float64)
    n = len(x)
    order, V = dense_encodings(x, k1)
    groups = np.zeros(n, int) if groups is None else np.asarray(groups)
    Vq = np.zeros_like(V)
    for i in range(n):
        nb = order[i, :k2]
        means = [V[nb[groups[nb] == g]].mean(0) for g in np.unique(groups[nb])]
        Vq[i] = np.mean(means, axis=0)
    if k3 is not None:
        for i in range(n):
            outside = np.setdiff1d(np.arange(n), order[i, :k3])
            Vq[i, outside] = 0
            Vq[i] /= Vq[i].sum()
    J = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            J[i, j] = 1 - np.minimum(Vq[i], Vq[j]).sum() / np.maximum(Vq[i], Vq[j]).sum()
    return J


def dense_camera_encodings(x, camera, k1_inter, k1_intra, k2_intra, k2_inter) -> np.ndarray:
    """The expanded encodings of ``clustering.camera_search`` from their definition: per
    row, the sorted same-camera and other-camera lists, reciprocal membership, softmax(−d)
    over the set, then the mean over the k2 nearest of each list."""
    x = np.asarray(x, np.float64)
    camera = np.asarray(camera)
    n = len(x)
    d2 = ((x[:, None, :] - x[None]) ** 2).sum(-1)

    def ranked(i, same):
        pool = np.flatnonzero((camera == camera[i]) == same)
        return pool[np.argsort(d2[i, pool], kind="stable")]

    intra = [ranked(i, True) for i in range(n)]
    inter = [ranked(i, False) for i in range(n)]
    V = np.zeros((n, n))
    for i in range(n):
        R = {i}
        R |= {j for j in intra[i][: k1_intra + 1] if i in intra[j][: k1_intra + 1]}
        R |= {j for j in inter[i][:k1_inter] if i in inter[j][:k1_inter]}
        E = np.array(sorted(R))
        w = np.exp(-(2 - 2 * (x[i] @ x[E].T)))
        V[i, E] = w / w.sum()
    out = np.zeros_like(V)
    for i in range(n):
        q = np.r_[intra[i][:k2_intra], inter[i][:k2_inter]]
        out[i] = V[q].mean(0)
    return out
