"""Cluster quality against ground truth (when the dataset has labels)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def cluster_quality(pseudo_labels: np.ndarray, true_pids: np.ndarray) -> dict[str, float]:
    """ARI and NMI over clustered samples (outliers excluded), number of clusters, outlier
    ratio and purity."""
    p = np.asarray(pseudo_labels)
    t = np.asarray(true_pids)
    m = p >= 0
    out = {
        "clusters": float(len(np.unique(p[m]))),
        "outlier_ratio": float((~m).mean()),
        "true_ids": float(len(np.unique(t))),
    }
    if m.sum() >= 2:
        out["ARI"] = float(adjusted_rand_score(t[m], p[m]))
        out["NMI"] = float(normalized_mutual_info_score(t[m], p[m]))
        # purity: share of samples whose cluster's majority id is their own
        _, inv = np.unique(p[m], return_inverse=True)
        _, tinv = np.unique(t[m], return_inverse=True)
        counts = np.zeros((inv.max() + 1, tinv.max() + 1), np.int64)
        np.add.at(counts, (inv, tinv), 1)
        out["purity"] = float(counts.max(1).sum() / m.sum())
    return out


def cross_modality_ari(
    labels: dict, pids: dict, v2i: np.ndarray | None, outliers: bool = False
) -> float | None:
    """ARI against the true identities of the joint labelling in which every visible
    cluster takes its infrared partner's label (``v2i``: visible cluster → infrared
    cluster, −1 = unmatched). ``labels`` and ``pids`` map 0 (visible) and 1 (infrared) to
    per-sample arrays.

    ``outliers=False``: over the clustered samples of both modalities. ``outliers=True``:
    over all samples, the outliers of both modalities counted as one more cluster (−1), as
    MMM's paper and code compute it (``mmlm.py``: ``adjusted_rand_score`` on the
    concatenated labels); comparable with their figures, but it also rewards or punishes
    the outlier share, not only the correspondence."""
    if v2i is None:
        return None
    lv, li = np.asarray(labels[0]), np.asarray(labels[1])
    v2i = np.asarray(v2i)
    n_i = int(li.max()) + 1 if (li >= 0).any() else 0
    # an unmatched visible cluster keeps an id of its own, outside the infrared range
    partner = np.where(v2i >= 0, v2i, n_i + np.arange(len(v2i)))
    joint_v = np.where(lv >= 0, partner[np.maximum(lv, 0)], -1)
    lab = np.concatenate([joint_v, li])
    true = np.concatenate([pids[0], pids[1]])
    m = np.ones(len(lab), bool) if outliers else lab >= 0
    return float(adjusted_rand_score(true[m], lab[m])) if m.sum() > 1 else None
