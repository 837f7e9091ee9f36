"""DBSCAN on a sparse precomputed distance graph (scikit-learn), plus label bookkeeping."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN
from sklearn.neighbors import sort_graph_by_row_values


def dbscan(dist, eps: float, min_samples: int = 4, n_jobs: int | None = None) -> np.ndarray:
    """Labels (N,) int64, −1 = outlier, clusters numbered in order of discovery.

    ``dist``: sparse CSR (absent entries = not neighbours, i.e. distance > eps) or dense
    (N, N). For a sparse Jaccard matrix eps must be < 1 (absent entries mean exactly 1).
    Same labels as DBSCAN on the dense matrix: a sample's neighbourhood is the set of
    entries ≤ eps in both cases, and cluster numbering depends only on sample order.
    """
    if sp.issparse(dist):
        if eps >= 1:
            raise ValueError(f"eps={eps}: a sparse Jaccard graph needs eps < 1")
        dist = sort_graph_by_row_values(dist.tocsr(), copy=True, warn_when_not_sorted=False)
    n = dist.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=n_jobs)
    return model.fit_predict(dist).astype(np.int64)


def relabel_contiguous(labels: np.ndarray) -> np.ndarray:
    """Map non-negative labels to 0..C−1 in order of first appearance; −1 stays −1."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, np.int64)
    valid = labels >= 0
    if valid.any():
        _, first, inv = np.unique(labels[valid], return_index=True, return_inverse=True)
        rank = np.argsort(np.argsort(first))
        out[valid] = rank[inv]
    return out


def num_clusters(labels: np.ndarray) -> int:
    return len(set(np.asarray(labels).tolist()) - {-1})
