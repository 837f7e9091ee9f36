"""EMCC: Extended Modality-Camera Clustering distance (ECUL, Wu et al., arXiv 2412.19134),
in ``vireid``'s reading (docs/methods/ecul.md): an extension of the modality-balanced
k-reciprocal Jaccard of MMM/PCAL's joint clustering with two switches.

* **Positives fused (k2, small range):** the query expansion of the encoding V_i over i's
  k2 nearest neighbours is averaged per (modality, camera) group first, then across the
  groups present, so every group in the neighbourhood weighs the same however many of its
  images are there (``group_balanced_expand``). Groups by modality only give exactly
  ``modality_balanced_expand``; one group gives the community's plain mean.
* **Negatives filtered (k3, large range):** entries of the expanded encoding that point
  outside i's k3 nearest neighbours (k3 ≥ k1) are dropped and the row is renormalised
  to unit mass before the Jaccard overlap (``k3_filter``), so a neighbour's far-away
  (hard-negative) neighbours cannot create overlap with i.

With ``camera=None`` and ``k3=None`` the result equals
``jaccard_distance(feats, k1, k2, modality=modality)`` bit for bit (and the community
Jaccard with ``modality=None`` too). Sparse and blocked like ``jaccard_distance``: the
same memory model plus O(N·k3) neighbour indices; no N × N array, on the host or a
torch device.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .camera_search import CameraSearch, camera_encodings, camera_range
from .jaccard import _Clock, _dot_distance, _dot_distance_torch, _host_overlap
from .knn import knn as knn_search
from .knn_approx import Ann
from .kreciprocal import ROW_BLOCK, TRIPLET_BUDGET, encodings, expanded_sets
from .overlap_torch import GPU_TRIPLET_BUDGET, jaccard_from_encodings


def group_codes(n: int, modality=None, camera=None) -> np.ndarray:
    """(N,) int64 code of each sample's (modality, camera) group; all zeros when both are
    None. ``modality`` (N,) bool "is infrared", ``camera`` (N,) int camera ids."""
    keys = [np.asarray(a).astype(np.int64) for a in (modality, camera) if a is not None]
    for a in keys:
        if a.shape != (n,):
            raise ValueError(f"modality/camera of shape {a.shape}: expected ({n},)")
    if not keys:
        return np.zeros(n, np.int64)
    return np.unique(np.stack(keys, 1), axis=0, return_inverse=True)[1].ravel()


def group_expansion_weights(groups_nb: np.ndarray) -> np.ndarray:
    """(N, k2) float32 query-expansion weights from the group codes of each row's k2
    neighbours: 1 / (G · n_g), with G the number of groups present in the row and n_g the
    neighbour's group size there (each group's mean, then the mean of the means)."""
    w = np.empty(groups_nb.shape, np.float32)
    for s in range(0, len(groups_nb), ROW_BLOCK):  # (block, k2, k2) comparisons at a time
        g = groups_nb[s : s + ROW_BLOCK]
        size = (g[:, :, None] == g[:, None, :]).sum(2)
        srt = np.sort(g, axis=1)
        present = 1 + (srt[:, 1:] != srt[:, :-1]).sum(1, keepdims=True)
        # float64 like modality_balanced_expand (0.5 / n == 1 / (2n) exactly), then float32
        w[s : s + ROW_BLOCK] = 1.0 / (present * size).astype(np.float64)
    return w


def group_balanced_expand(
    V: sp.csr_matrix, knn: np.ndarray, k2: int, groups: np.ndarray
) -> sp.csr_matrix:
    """V'_i = mean over the groups present among i's k2 neighbours of the group's mean
    encoding. ``groups`` (N,) int codes (``group_codes``)."""
    n = V.shape[0]
    nb = knn[:, :k2]
    w = group_expansion_weights(np.asarray(groups)[nb])
    A = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(n), k2), nb.ravel())), shape=(n, n))
    return (A @ V).tocsr()


def k3_filter(V: sp.csr_matrix, knn: np.ndarray, k3: int) -> sp.csr_matrix:
    """Keep V[i, j] only where j is among i's first k3 neighbours (``knn[i, :k3]``, self
    first; −1 entries are padding), then renormalise each row to sum 1 so
    ``1 − s/(2 − s)`` stays the Jaccard distance of the filtered encodings. (N, N) CSR
    float32."""
    n = V.shape[0]
    if knn.shape[1] < k3:
        raise ValueError(f"k3={k3}: the neighbour lists have only {knn.shape[1]} columns")
    cols = knn[:, :k3].ravel()
    ok = cols >= 0
    rows = np.repeat(np.arange(n), k3)[ok]
    inside = sp.csr_matrix((np.ones(ok.sum(), np.float32), (rows, cols[ok])), shape=(n, n))
    F = V.multiply(inside).tocsr()
    F.eliminate_zeros()
    mass = np.asarray(F.sum(1)).ravel()
    # a row keeps at least its own entry (i ∈ E_i and i = knn[i, 0]); guard anyway
    return (sp.diags(1.0 / np.where(mass > 0, mass, 1)).astype(np.float32) @ F).tocsr()


def emcc_distance(
    feats,
    k1: int = 30,
    k2: int = 6,
    k3: int | None = None,
    modality=None,
    camera=None,
    *,
    max_distance: float | None = None,
    knn_backend: str = "auto",
    ann: Ann | None = None,
    budget: int | None = None,
    workers: int | None = None,
    device: str | None = None,
    timings: dict[str, float] | None = None,
    camera_search: CameraSearch | None = None,
) -> sp.csr_matrix:
    """(N, N) CSR float32 EMCC distances in [0, 1]; absent entries = 1.

    ``feats`` (N, D) float32 clustering features; ``modality`` (N,) bool "is infrared"
    and ``camera`` (N,) int camera ids define the groups of the k2 expansion (None: not
    used); ``k3`` (≥ k1) the large neighbourhood of the negative filter (None: off).
    ``max_distance``, ``knn_backend``, ``ann``, ``budget``, ``workers``, ``device`` and
    ``timings`` as in ``jaccard_distance`` (on a CUDA device the kNN runs there too; with
    ``ann`` one approximate search of width k3 serves both ranges). ``camera_search``
    (needs ``camera``): the k-reciprocal sets and the expansion come from intra- and
    inter-camera ranking lists instead (``clustering.camera_search``, the CA-Jaccard
    reading; ``k1`` is the inter-camera k, ``k2`` and the group expansion are unused, so
    the (modality, camera) balancing does not act; ``camera_search.k3_range`` says which
    list bounds the k3 filter).
    """
    x = np.ascontiguousarray(np.asarray(feats, dtype=np.float32))
    n = len(x)
    if n == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    if k3 is not None and k3 < k1:
        raise ValueError(f"k3={k3}: expected k3 >= k1={k1} (the large-range neighbourhood)")
    groups = group_codes(n, modality, camera)
    clock = _Clock(timings)
    k1 = min(k1, n)
    k3 = None if k3 is None else min(k3, n)
    width = k1 if k3 is None else k3  # one search serves both ranges
    xt = None if device is None else torch.from_numpy(x).to(device)
    if xt is not None and xt.is_cuda and knn_backend == "auto":
        _, nn = knn_search(xt, width, backend="torch", ann=ann)
    else:
        _, nn = knn_search(x, width, backend=knn_backend, ann=ann)
    clock("knn")
    pair = _dot_distance(x) if xt is None else _dot_distance_torch(xt)
    if camera_search is not None:
        if camera is None:
            raise ValueError("camera_search needs the samples' camera ids (camera=...)")
        V = camera_encodings(x, np.asarray(camera), k1, camera_search, pair)
    else:
        # the k-reciprocal sets see exactly k1 columns (the community's quirk, see jaccard.py)
        V = encodings(expanded_sets(nn[:, :k1], k1), pair)
        if k2 > 1:
            V = group_balanced_expand(V, nn, min(k2, k1), groups)
    if k3 is not None and camera_search is not None and camera_search.k3_range == "camera":
        # the search's range, split by camera like its sets (camera_search docstring)
        V = k3_filter(V, camera_range(x, np.asarray(camera), k3), 2 * k3)
    elif k3 is not None and k3 < n:
        V = k3_filter(V, nn, k3)
    clock("encodings")
    if device is not None:
        dist = jaccard_from_encodings(V, device, max_distance, budget or GPU_TRIPLET_BUDGET)
    else:
        dist = _host_overlap(V, max_distance, budget or TRIPLET_BUDGET, workers)
    clock("overlap")
    return dist


def emcc_labels(
    feats: np.ndarray,
    k1: int,
    k2: int,
    k3: int | None,
    eps: float,
    min_samples: int,
    modality=None,
    camera=None,
    knn_backend: str = "auto",
    device: str = "cpu",
    ann: Ann | None = None,
    camera_search: CameraSearch | None = None,
) -> np.ndarray:
    """Contiguous pseudo-labels 0..C−1 (−1 = outlier) of DBSCAN on the EMCC distance;
    ``device`` and ``ann`` as in ``cluster_labels`` ("cpu", "cuda" or "auto"; None =
    exact neighbours)."""
    from .dbscan import dbscan, relabel_contiguous
    from .pseudo_labels import overlap_device

    if len(feats) < 2:
        return np.full(len(feats), -1, np.int64)
    dist = emcc_distance(
        feats,
        k1,
        k2,
        k3,
        modality,
        camera,
        max_distance=eps,
        knn_backend=knn_backend,
        ann=ann,
        device=overlap_device(device),
        camera_search=camera_search,
    )
    return relabel_contiguous(dbscan(dist, eps, min_samples))
