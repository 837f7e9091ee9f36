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
