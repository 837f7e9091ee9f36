"""One modality's (or the joint set's) pseudo-labels: Jaccard distance → DBSCAN."""

from __future__ import annotations

import numpy as np
import torch

from .dbscan import dbscan, relabel_contiguous
from .jaccard import jaccard_distance


def overlap_device(name: str) -> str | None:
    """Map the ``cluster.device`` setting to ``jaccard_distance``'s ``device``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else None
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("cluster.device=cuda, but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"cluster.device={name!r}: expected auto, cpu or cuda")
    return None if name == "cpu" else name


def cluster_labels(
    feats: np.ndarray,
    k1: int,
    k2: int,
    eps: float,
    min_samples: int,
    knn_backend: str = "auto",
    modality: np.ndarray | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Contiguous pseudo-labels 0..C−1 (−1 = outlier). ``modality`` (N,) bool "is
    infrared" selects the modality-balanced Jaccard of joint clustering. ``device``:
    "cpu" (NumPy), "cuda" (kNN and overlap on the GPU) or "auto" (the GPU when there is
    one); both give the same distances."""
    if len(feats) < 2:
        return np.full(len(feats), -1, np.int64)
    dist = jaccard_distance(
        feats,
        k1,
        k2,
        modality=modality,
        max_distance=eps,
        knn_backend=knn_backend,
        device=overlap_device(device),
    )
    return relabel_contiguous(dbscan(dist, eps, min_samples))
