"""Cross-modality cluster association.

* ``progressive_match`` — PGM's Hungarian matching (Wu & Ye, CVPR 2023;
  zesenwu23/USL-VI-ReID ``train_sysu.py``), completed for both shapes: a first
  ``linear_sum_assignment`` pairs min(A, B) clusters one-to-one; the clusters of the larger
  side left over are matched in further Hungarian passes against the whole other side
  (progressive many-to-one) until each has a partner. The community code crashes when
  there are fewer visible than infrared clusters; here each direction is computed the same
  way, so either shape works.
* ``adca_associate`` — ADCA's cross-modality memory aggregation (yangbincv/ADCA
  ``adca_sysu_train.py``): visible×infrared sample pairs with cosine ≥ ``threshold`` vote
  for (visible label, infrared label); pairs are accepted greedily one-to-one by vote
  count, outliers skipped. Similarities are computed in blocks, never as a full matrix.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment


def pgm_cost(centroids_a: np.ndarray, centroids_b: np.ndarray) -> np.ndarray:
    """PGM's cost 1 / exp(cos) between L2-normalised centroids (A, D) and (B, D)."""
    a = centroids_a / np.linalg.norm(centroids_a, axis=1, keepdims=True)
    b = centroids_b / np.linalg.norm(centroids_b, axis=1, keepdims=True)
    return np.exp(-(a @ b.T))


def _progressive_rows(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row gets a column: Hungarian passes over the still-unmatched rows. Returns
    (row → column, pass number of the match; pass 0 = one-to-one)."""
    a = cost.shape[0]
    match = np.full(a, -1, np.int64)
    passes = np.full(a, -1, np.int64)
    left = np.arange(a)
    p = 0
    while len(left) and cost.shape[1]:
        r, c = linear_sum_assignment(cost[left])
        match[left[r]] = c
        passes[left[r]] = p
        left = left[match[left] < 0]
        p += 1
    return match, passes


def progressive_match(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) cost → (a2b (A,), b2a (B,)): every cluster on each side gets a partner.

    The first-pass (one-to-one) pairs agree in both directions; the extra clusters of the
    larger side are attached many-to-one by the later passes.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be (A, B), got shape {cost.shape}")
    a2b, _ = _progressive_rows(cost)
    b2a, _ = _progressive_rows(cost.T)
    return a2b, b2a


def adca_associate(
    feats_vis: np.ndarray,
    labels_vis: np.ndarray,
    feats_ir: np.ndarray,
    labels_ir: np.ndarray,
    threshold: float = 0.5,
    block: int = 4096,
) -> list[tuple[int, int]]:
    """One-to-one (visible label, infrared label) pairs, most-voted first."""
    votes: Counter = Counter()
    fi = np.asarray(feats_ir, np.float32)
    for s in range(0, len(feats_vis), block):
        sim = np.asarray(feats_vis[s : s + block], np.float32) @ fi.T
        r, c = np.nonzero(sim >= threshold)
        votes.update(zip(labels_vis[s + r].tolist(), labels_ir[c].tolist(), strict=True))
    used_v, used_i, pairs = set(), set(), []
    # most votes first; ties broken by the labels so the result is deterministic
    for (v, i), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
        if v < 0 or i < 0 or v in used_v or i in used_i:
            continue
        used_v.add(v)
        used_i.add(i)
        pairs.append((v, i))
    return pairs


def centroids(feats: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, D) mean feature of each cluster 0..C−1 (labels −1 ignored)."""
    labels = np.asarray(labels)
    m = labels >= 0
    c = int(labels[m].max()) + 1 if m.any() else 0
    idx = np.flatnonzero(m)
    onehot = sp.csr_matrix((np.ones(len(idx)), (labels[idx], idx)), shape=(c, len(labels)))
    sums = np.asarray(onehot @ np.asarray(feats, np.float64))
    counts = np.bincount(labels[idx], minlength=c)[:, None]
    return (sums / np.maximum(counts, 1)).astype(np.float32)
