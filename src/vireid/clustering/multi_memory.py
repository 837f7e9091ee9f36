"""Multi-memory learning and matching (MMM, Shi et al., ECCV 2024).

Each cluster is split by k-means into ``n`` sub-clusters whose centres are the cluster's
memories (front/back appearances of one person end up in different memories). The cost
between a visible cluster p and an infrared cluster q is the sum of nearest-memory
distances, M(p, q) = Σ_i min_j ‖K_V[p, i] − K_R[q, j]‖₂ (the paper's formula, summing over
visible memories); ``direction="infrared"`` sums over infrared memories (the official
code, ``mmlm.py``) and ``"symmetric"`` averages both (a Chamfer distance).

A cluster with fewer than ``n`` samples uses each sample as a memory (what k-means with k =
size would return). Its nearest-memory terms are then averaged and scaled by ``n`` so its
costs stay comparable with full clusters.
"""

from __future__ import annotations

import numpy as np

from .kmeans import batched_kmeans
from .matching import progressive_match


def cluster_memories(
    feats: np.ndarray, labels: np.ndarray, n: int = 4, n_init: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(C, n, D) memories (padded with NaN) and (C,) memory counts for clusters 0..C−1."""
    labels = np.asarray(labels)
    c = int(labels.max()) + 1 if (labels >= 0).any() else 0
    mem = np.full((c, n, feats.shape[1]), np.nan, np.float32)
    count = np.zeros(c, np.int64)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(c + 1))
    members = [order[bounds[p] : bounds[p + 1]] for p in range(c)]
    big = [p for p in range(c) if len(members[p]) > n]
    for p in set(range(c)) - set(big):  # small cluster: every sample is a memory
        mem[p, : len(members[p])] = feats[members[p]]
        count[p] = len(members[p])
    if big:  # all larger clusters in one batched k-means (scikit-learn's algorithm)
        mem[big], _ = batched_kmeans(feats, [members[p] for p in big], n, n_init, seed=seed)
        count[big] = n
    return mem, count


def _nearest_sums(
    a: np.ndarray, ca: np.ndarray, b: np.ndarray, cb: np.ndarray, n: int, block: int = 256
) -> np.ndarray:
    """(A, B): Σ over a's memories of the distance to b's nearest memory (scaled to n)."""
    A, B = len(a), len(b)
    fb = np.nan_to_num(b.reshape(B * n, -1), nan=0.0).astype(np.float64)
    sq_b = (fb**2).sum(1)
    valid_b = (np.arange(n)[None, :] < cb[:, None]).reshape(-1)
    out = np.empty((A, B))
    for s in range(0, A, block):
        fa = np.nan_to_num(a[s : s + block].reshape(-1, a.shape[2]), nan=0.0).astype(np.float64)
        d2 = (fa**2).sum(1)[:, None] + sq_b[None] - 2 * fa @ fb.T
        d = np.sqrt(np.maximum(d2, 0))
        d[:, ~valid_b] = np.inf
        d = d.reshape(-1, n, B, n).min(axis=3)  # nearest memory of each b cluster
        va = np.arange(n)[None, :] < ca[s : s + block, None]  # (rows, n) real memories
        d = np.where(va[:, :, None], d, 0.0).sum(1)  # (rows, B)
        out[s : s + block] = d * (n / ca[s : s + block, None])
    return out


def multi_memory_cost(mem_v, count_v, mem_r, count_r, direction: str = "visible") -> np.ndarray:
    """(Cv, Cr) matching cost between visible and infrared clusters."""
    n = mem_v.shape[1]
    if direction == "visible":
        return _nearest_sums(mem_v, count_v, mem_r, count_r, n)
    if direction == "infrared":
        return _nearest_sums(mem_r, count_r, mem_v, count_v, n).T
    if direction == "symmetric":
        return 0.5 * (
            _nearest_sums(mem_v, count_v, mem_r, count_r, n)
            + _nearest_sums(mem_r, count_r, mem_v, count_v, n).T
        )
    raise ValueError(f"cost direction {direction!r}: expected visible, infrared or symmetric")


def greedy_match(cost: np.ndarray) -> np.ndarray:
    """The official code's matching: every visible cluster takes its cheapest infrared
    cluster (many-to-one, infrared clusters may stay unmatched)."""
    return cost.argmin(axis=1) if cost.shape[1] else np.full(len(cost), -1)


def match_clusters(
    cost: np.ndarray, method: str = "hungarian", skip_last: bool = False
) -> np.ndarray:
    """Visible cluster → infrared cluster (−1 = unmatched).

    ``skip_last`` restores both halves of the official code's off-by-one (its loops run to
    ``len(label_set) − 1``, ``mmlm.py``): the last infrared cluster is never a candidate,
    and the last visible cluster is never matched — it keeps its own visible label, which
    collides with the infrared cluster of the same number when there is one (returned as
    that partner, so the labels it trains on are the code's); otherwise it stays
    unmatched."""
    if method not in ("hungarian", "greedy"):
        raise ValueError(f"matching {method!r}: expected hungarian or greedy")
    solve = greedy_match if method == "greedy" else (lambda c: progressive_match(c)[0])
    if not skip_last or len(cost) == 0:
        return solve(cost)
    n_v, n_r = cost.shape
    v2r = np.full(n_v, -1, np.int64)
    if n_v > 1 and n_r > 1:
        v2r[:-1] = solve(cost[:-1, :-1])
    if n_v - 1 < n_r:  # the label collision: visible id C_v − 1 is infrared id C_v − 1
        v2r[-1] = n_v - 1
    return v2r


def merge_matched(
    labels_v: np.ndarray, v2r: np.ndarray, num_infrared: int
) -> tuple[np.ndarray, np.ndarray]:
    """Y^v := QY^r as the visible identities every identity term reads: visible clusters
    matched to one infrared cluster become one identity (one memory row, one centre).
    Returns the (N_v,) contiguous visible identity of every sample (−1 kept) and, per
    identity, its infrared cluster (−1: an unmatched visible cluster, its own identity).
    After merging, identities and infrared clusters are matched one-to-one."""
    c_v = len(v2r)
    unified = np.where(v2r >= 0, v2r, num_infrared + np.arange(c_v))  # cluster → person id
    ids, row = np.unique(unified, return_inverse=True)
    ident = np.where(labels_v >= 0, row[np.maximum(labels_v, 0)], -1)
    return ident, np.where(ids < num_infrared, ids, -1)


def transfer_labels(
    labels_v: np.ndarray, labels_r: np.ndarray, v2r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unified labels: infrared clusters keep their id; a matched visible cluster takes its
    infrared partner's id (Y^v := Q·Y^r); an unmatched visible cluster gets a fresh id
    after all infrared ids (so it never collides with an unrelated infrared identity)."""
    c_r = int(labels_r.max()) + 1 if (labels_r >= 0).any() else 0
    lut = np.where(v2r >= 0, v2r, c_r + np.arange(len(v2r)))
    unified_v = np.where(labels_v >= 0, lut[np.maximum(labels_v, 0)], -1)
    return unified_v, labels_r.copy()
