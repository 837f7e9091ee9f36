"""One modality's (or the joint set's) pseudo-labels: Jaccard distance → DBSCAN."""

from __future__ import annotations

import numpy as np

from .dbscan import dbscan, relabel_contiguous
from .jaccard import jaccard_distance


def cluster_labels(
    feats: np.ndarray,
    k1: int,
    k2: int,
    eps: float,
    min_samples: int,
    knn_backend: str = "auto",
    modality: np.ndarray | None = None,
) -> np.ndarray:
    """Contiguous pseudo-labels 0..C−1 (−1 = outlier). ``modality`` (N,) bool "is
    infrared" selects the modality-balanced Jaccard of joint clustering."""
    if len(feats) < 2:
        return np.full(len(feats), -1, np.int64)
    dist = jaccard_distance(
        feats, k1, k2, modality=modality, max_distance=eps, knn_backend=knn_backend
    )
    return relabel_contiguous(dbscan(dist, eps, min_samples))
