"""k-means of many small groups at once (MMM's multi-memories: every cluster split into
``k`` sub-clusters), batched in torch instead of one scikit-learn fit per cluster.

The algorithm is scikit-learn's ``KMeans(n_clusters=k, n_init, tol)`` (Lloyd): greedy
k-means++ seeding with 2 + ⌊ln k⌋ candidates per centre, Lloyd steps until the labels stop
changing or the summed squared centre shift is ≤ tol × the mean per-feature variance of
the group, at most ``max_iter`` steps, empty clusters re-seeded with the points farthest
from their centre, a final assignment, and the run with the lowest inertia kept. Only the
random streams differ, so the memories are scikit-learn's wherever k-means has one clear
optimum (tested), and a local optimum of the same quality otherwise.

Why it is fast: a centre is always a weighted mean of its group's samples, ``c = w·X``, so
with the group's Gram matrix G = X·Xᵀ every distance is ‖x_p − c‖² = G_pp − 2(w·G)_p +
w·G·wᵀ. The Lloyd loop then works on (S × S) Gram matrices and (k × S) weights, without
the feature dimension D, and all groups of similar size and all ``n_init`` runs go through
one batched product. Groups are padded to the largest size in their chunk (sorted by size,
so padding is small). Memory per chunk: ``budget`` float64 elements of padded features
(B·S·D) plus B·S² for the Gram matrices; groups above ``gram_max`` samples (whose Gram
matrix alone would pass 128 MB) are fitted by scikit-learn one at a time.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

CHUNK_ELEMENTS = 1 << 24  # padded float64 features per chunk (128 MB)
GRAM_MAX = 4096  # larger groups: scikit-learn, one fit each


def batched_kmeans(
    x: np.ndarray,
    groups: list[np.ndarray],
    k: int,
    n_init: int = 10,
    max_iter: int = 300,
    tol: float = 1e-4,
    seed: int = 0,
    budget: int = CHUNK_ELEMENTS,
    gram_max: int = GRAM_MAX,
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (G, k, D) float32 and inertia (G,) of k-means on ``x[groups[g]]`` for every
    group g; ``x`` (N, D), each group an index array of at least ``k`` samples."""
    sizes = np.array([len(g) for g in groups], np.int64)
    if (sizes < k).any():
        bad = int(np.flatnonzero(sizes < k)[0])
        raise ValueError(f"group {bad} has {sizes[bad]} samples, fewer than k={k}")
    d = x.shape[1]
    centres = np.empty((len(groups), k, d), np.float32)
    inertia = np.empty(len(groups))
    gen = torch.Generator().manual_seed(seed)
    order = np.argsort(sizes, kind="stable")
    large = order[sizes[order] > gram_max]
    order = order[sizes[order] <= gram_max]
    start = 0
    while start < len(order):
        s_pad = sizes[order[start]]
        stop = start
        # grow the chunk while its padded features fit the budget (sizes ascend)
        while stop < len(order) and (stop - start + 1) * sizes[order[stop]] * d <= budget:
            s_pad = sizes[order[stop]]
            stop += 1
        stop = max(stop, start + 1)
        idx = order[start:stop]
        c, e = _gram_lloyd(x, [groups[g] for g in idx], int(s_pad), k, n_init, max_iter, tol, gen)
        centres[idx], inertia[idx] = c, e
        start = stop
    for g in large:
        centres[g], inertia[g] = _sklearn_fit(x[groups[g]], k, n_init, max_iter, tol, seed)
    return centres, inertia


def _sklearn_fit(xg, k, n_init, max_iter, tol, seed) -> tuple[np.ndarray, float]:
    from sklearn.cluster import KMeans

    with warnings.catch_warnings():  # duplicate points: fewer distinct centres is fine
        warnings.simplefilter("ignore")
        km = KMeans(k, n_init=n_init, max_iter=max_iter, tol=tol, random_state=seed).fit(xg)
    return km.cluster_centers_, float(km.inertia_)


def _gram_lloyd(x, groups, s_pad, k, n_init, max_iter, tol, gen):
    """One chunk: B groups padded to s_pad samples, R = n_init runs each."""
    b, d, r = len(groups), x.shape[1], n_init
    size = torch.tensor([len(g) for g in groups])
    valid = torch.arange(s_pad)[None] < size[:, None]  # (B, S)
    xs = torch.zeros(b, s_pad, d, dtype=torch.float64)
    for i, g in enumerate(groups):
        xs[i, : len(g)] = torch.from_numpy(x[g])
    mean = xs.sum(1) / size[:, None]
    xs -= mean[:, None] * valid[..., None]  # centred (as scikit-learn does), padding stays 0
    gram = xs @ xs.transpose(1, 2)  # (B, S, S)
    gd = gram.diagonal(dim1=1, dim2=2)  # (B, S) squared norms
    tol_g = tol * gd.sum(1) / (size * d)  # tol × mean per-feature variance
    w = _kmeans_pp(gram, gd, valid, size, k, r, gen)  # (B, R, k, S)
    labels_old = torch.full((b, r, s_pad), -1)
    active = torch.ones(b, r, dtype=torch.bool)
    for _ in range(max_iter):
        dist = _distances(gram, gd, w)  # (B, R, k, S)
        labels = dist.argmin(2)
        w_new = _means(labels, valid, k)
        w_new = _relocate_empty(w_new, dist, labels, valid)
        delta = w_new - w
        shift = (_times_gram(delta, gram) * delta).sum((2, 3))  # Σ_j ‖c_new − c_old‖²
        strict = ((labels == labels_old) | ~valid[:, None]).all(-1)
        w = torch.where(active[..., None, None], w_new, w)
        active &= ~(strict | (shift <= tol_g[:, None]))
        if not active.any():
            break
        labels_old = labels
    dist = _distances(gram, gd, w)  # final assignment to the final centres
    inertia = (dist.min(2).values * valid[:, None]).sum(-1)  # (B, R)
    best = inertia.argmin(1)  # first minimum, like scikit-learn's strict "<"
    wb = w[torch.arange(b), best]  # (B, k, S)
    centres = wb @ xs + mean[:, None]
    return centres.float().numpy(), inertia[torch.arange(b), best].numpy()


def _times_gram(w, gram):
    """(B, R, k, S) · (B, S, S), as one (B, R·k, S) product (a broadcast would copy G R×)."""
    b, r, k, s = w.shape
    return (w.reshape(b, r * k, s) @ gram).reshape(b, r, k, s)


def _distances(gram, gd, w):
    wg = _times_gram(w, gram)
    cc = (wg * w).sum(-1, keepdim=True)
    return (gd[:, None, None] - 2 * wg + cc).clamp_min_(0)


def _means(labels, valid, k):
    onehot = torch.nn.functional.one_hot(labels, k).transpose(2, 3).double()  # (B, R, k, S)
    onehot *= valid[:, None, None]
    return onehot / onehot.sum(-1, keepdim=True).clamp_min(1)


def _relocate_empty(w, dist, labels, valid):
    """scikit-learn's ``_relocate_empty_clusters``: an empty centre moves onto one of the
    points farthest from their own centre, which leaves its old cluster (rare: a loop)."""
    empty = w.sum(-1) == 0  # (B, R, k)
    if not empty.any():
        return w
    own = dist.gather(2, labels[:, :, None]).squeeze(2)  # (B, R, S)
    own = torch.where(valid[:, None], own, -1.0)
    for bi, ri in torch.nonzero(empty.any(-1)).tolist():
        js = torch.nonzero(empty[bi, ri]).ravel().tolist()
        far = torch.argsort(own[bi, ri], descending=True, stable=True)[: len(js)]
        for j, p in zip(js, far.tolist(), strict=False):
            old = int(labels[bi, ri, p])
            n_old = int((w[bi, ri, old] > 0).sum())
            if n_old > 1:
                row = w[bi, ri, old] * n_old
                row[p] = 0
                w[bi, ri, old] = row / (n_old - 1)
            w[bi, ri, j] = 0
            w[bi, ri, j, p] = 1
    return w


def _kmeans_pp(gram, gd, valid, size, k, r, gen):
    """Greedy k-means++ seeds as one-hot weights (B, R, k, S)."""
    b, s = valid.shape
    trials = 2 + int(math.log(k))
    first = (torch.rand(b, r, generator=gen, dtype=torch.float64) * size[:, None]).long()
    first = torch.minimum(first, size[:, None] - 1)
    chosen = [first]
    closest = _point_dist(gram, gd, first) * valid[:, None]  # (B, R, S)
    pot = closest.sum(-1)
    for _ in range(1, k):
        u = torch.rand(b, r, trials, generator=gen, dtype=torch.float64) * pot[..., None]
        cand = torch.searchsorted(closest.cumsum(-1).contiguous(), u.contiguous())
        cand = torch.minimum(cand, size[:, None, None] - 1)
        dc = torch.stack([_point_dist(gram, gd, cand[..., t]) for t in range(trials)], 2)
        dc = torch.minimum(dc, closest[:, :, None]) * valid[:, None, None]  # (B, R, T, S)
        cpot = dc.sum(-1)
        best = cpot.argmin(-1)  # (B, R)
        pick = best[..., None, None].expand(-1, -1, 1, s)
        closest = dc.gather(2, pick).squeeze(2)
        pot = cpot.gather(2, best[..., None]).squeeze(2)
        chosen.append(cand.gather(2, best[..., None]).squeeze(2))
    idx = torch.stack(chosen, 2)  # (B, R, k)
    return torch.nn.functional.one_hot(idx, s).double()


def _point_dist(gram, gd, idx):
    """(B, R, S) squared distances from every sample to sample idx[b, r] of its group."""
    rows = gram.gather(1, idx[..., None].expand(-1, -1, gram.shape[2]))  # (B, R, S)
    sel = gd.gather(1, idx)  # (B, R)
    return (gd[:, None] + sel[..., None] - 2 * rows).clamp_min_(0)
