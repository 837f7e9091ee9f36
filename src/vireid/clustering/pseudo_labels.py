"""One modality's (or the joint set's) pseudo-labels: Jaccard distance → DBSCAN."""

from __future__ import annotations

import numpy as np

from ..utils.device import pick_device
from .dbscan import dbscan, relabel_contiguous
from .jaccard import jaccard_distance
from .knn_approx import Ann


def build_ann(cluster_cfg) -> Ann | None:
    """``cluster.knn`` and its ivf/hnsw/PCA settings → ``knn_approx.Ann`` (None = exact search)."""
    c = cluster_cfg
    if c.knn == "exact":
        return None
    return Ann(
        c.knn,
        nlist=c.ivf_nlist,
        nprobe=c.ivf_nprobe,
        m=c.hnsw_m,
        ef_construction=c.hnsw_ef_construction,
        ef_search=c.hnsw_ef_search,
        metric=c.hnsw_metric,
        pca_dim=c.knn_pca_dim,
        rerank=c.knn_rerank,
    )


def overlap_device(name: str) -> str | None:
    """Map the ``cluster.device`` setting to ``jaccard_distance``'s ``device`` (None: the
    NumPy host path)."""
    dev = pick_device(name, "cluster.device")
    return None if dev.type == "cpu" else str(dev)


def cluster_labels(
    feats: np.ndarray,
    k1: int,
    k2: int,
    eps: float,
    min_samples: int,
    knn_backend: str = "auto",
    modality: np.ndarray | None = None,
    device: str = "cpu",
    ann: Ann | None = None,
) -> np.ndarray:
    """Contiguous pseudo-labels 0..C−1 (−1 = outlier). ``modality`` (N,) bool "is
    infrared" selects the modality-balanced Jaccard of joint clustering. ``device``:
    "cpu" (NumPy), "cuda" (kNN and overlap on the GPU) or "auto" (the GPU when there is
    one); both give the same distances. ``ann``: approximate neighbours (None = exact)."""
    if len(feats) < 2:
        return np.full(len(feats), -1, np.int64)
    dist = jaccard_distance(
        feats,
        k1,
        k2,
        modality=modality,
        max_distance=eps,
        knn_backend=knn_backend,
        ann=ann,
        device=overlap_device(device),
    )
    return relabel_contiguous(dbscan(dist, eps, min_samples))
