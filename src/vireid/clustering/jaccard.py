"""k-reciprocal Jaccard distance for clustering, as a sparse matrix.

Reproduces the community function ``compute_jaccard_distance(X, k1, k2)``
(alibaba/cluster-contrast-reid ``faiss_rerank.py``, identical in ADCA, PGM, PCLHD, PCA, MMM;
protocols.md §5.2) including its quirks:

* the k-NN list has k1 columns (self first), so R(i, k1) looks at self + k1−1 neighbours
  (the test-time re-ranking uses k1+1 columns);
* encodings use d = 2 − 2·xᵢ·xⱼ from dot products (the flip-averaged features are not
  re-normalised), while the neighbour ranking is true L2;
* query expansion averages the V rows of the first k2 neighbours (self included);
* no λ mix: the result is the pure Jaccard distance 1 − s/(2 − s), clipped at 0.

Only pairs whose expanded encodings overlap are stored; an absent entry means distance 1.
The diagonal (0) is always stored. With ``max_distance`` only entries ≤ it are kept,
which changes nothing for DBSCAN with eps ≤ max_distance and bounds memory.

Memory model: O(N·D) features + O(N·k1) neighbour lists + O(N·k1·k2) encodings + the
output (O(N·m), m = overlapping partners per row, typically a few hundred) + a bounded
work buffer per thread (``budget`` triplets of ~40 bytes). No N × N dense array is ever
built.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from ..utils.parallel import thread_map
from .knn import knn as knn_search
from .knn_approx import Ann
from .kreciprocal import (
    TRIPLET_BUDGET,
    encodings,
    expanded_sets,
    min_overlap,
    query_expand,
    row_blocks,
)
from .overlap_torch import GPU_TRIPLET_BUDGET, jaccard_from_encodings


def _dot_distance(x: np.ndarray, chunk_bytes: int = 16 << 20):
    step = max(256, chunk_bytes // (8 * x.shape[1]))  # two gathered (step, D) float32 tiles

    def pair(r, c):  # 2 − 2·xᵣ·x_c in float32, as the reference computes it
        out = np.empty(len(r), np.float32)

        def chunk(s: int) -> None:
            e = s + step
            out[s:e] = 2 - 2 * np.einsum("ij,ij->i", x[r[s:e]], x[c[s:e]])

        thread_map(chunk, range(0, len(r), step))
        return out

    return pair


def _dot_distance_torch(xt: torch.Tensor, chunk_bytes: int = 256 << 20):
    """The same pair distances gathered from features ``xt`` on a torch device (the host
    gather of N·|E| rows dominates at N = 1M, D = 2048); equal to ``_dot_distance`` up to
    the order of the float32 dot-product sums."""
    step = max(256, chunk_bytes // (8 * xt.shape[1]))

    def pair(r, c):
        out = np.empty(len(r), np.float32)
        rt, ct = torch.from_numpy(r).to(xt.device), torch.from_numpy(c).to(xt.device)
        for s in range(0, len(r), step):
            dot = (xt[rt[s : s + step]] * xt[ct[s : s + step]]).sum(1)
            out[s : s + step] = (2 - 2 * dot).cpu().numpy()
        return out

    return pair


def modality_balanced_expand(
    V: sp.csr_matrix, knn: np.ndarray, k2: int, is_infrared: np.ndarray
) -> sp.csr_matrix:
    """Query expansion of MMM/PCA's ``compute_modal_invariant_jaccard_distance``: among
    the first k2 neighbours, average the visible rows and the infrared rows separately,
    then average the two means (or take the one that exists)."""
    n = V.shape[0]
    nb = knn[:, :k2]
    ir = is_infrared[nb]
    n_ir = ir.sum(1, keepdims=True)
    n_vis = k2 - n_ir
    both = (n_ir > 0) & (n_vis > 0)
    w_ir = np.where(both, 0.5, 1.0) / np.maximum(n_ir, 1)
    w_vis = np.where(both, 0.5, 1.0) / np.maximum(n_vis, 1)
    w = np.where(ir, w_ir, w_vis).astype(np.float32)
    A = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(n), k2), nb.ravel())), shape=(n, n))
    return (A @ V).tocsr()


def jaccard_distance(
    feats,
    k1: int = 30,
    k2: int = 6,
    *,
    modality=None,
    max_distance: float | None = None,
    knn_backend: str = "auto",
    ann: Ann | None = None,
    budget: int | None = None,
    workers: int | None = None,
    device: str | None = None,
    timings: dict[str, float] | None = None,
) -> sp.csr_matrix:
    """(N, N) CSR float32 k-reciprocal Jaccard distances in [0, 1]; absent entries = 1.

    ``feats`` (N, D) float32, as the clustering features are (L2-normalised, possibly
    flip-averaged without re-normalisation). ``modality`` (N,) bool "is infrared" switches
    to the modality-balanced query expansion (MMM's joint clustering). ``workers``: threads
    for the row blocks (default: all cores; memory grows by one block's work per thread).
    ``device``: None runs the overlap stage with NumPy on the host; a torch device
    ("cuda", "cuda:1", "cpu") runs it and the encodings' pair distances with torch there
    (``overlap_torch``; the overlap is bit-identical, the pair distances may differ in the
    last float32 bit from summation order) and, for CUDA with ``knn_backend="auto"``, the
    kNN search too. ``budget``: triplets
    per row block (default ``TRIPLET_BUDGET`` on the host, ``GPU_TRIPLET_BUDGET`` with a
    device). ``timings``, when given, receives the seconds of each stage.
    ``ann``: approximate neighbours (``knn.Ann``, faiss IVF or HNSW); None = exact.
    """
    x = np.ascontiguousarray(np.asarray(feats, dtype=np.float32))
    n = len(x)
    if n == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    clock = _Clock(timings)
    k1 = min(k1, n)
    # on a device the features are copied there once, for the kNN and the pair distances
    xt = None if device is None else torch.from_numpy(x).to(device)
    if xt is not None and xt.is_cuda and knn_backend == "auto":
        _, nn = knn_search(xt, k1, backend="torch", ann=ann)
    else:
        _, nn = knn_search(x, k1, backend=knn_backend, ann=ann)
    clock("knn")
    pair = _dot_distance(x) if xt is None else _dot_distance_torch(xt)
    V = encodings(expanded_sets(nn, k1), pair)
    if k2 > 1 and modality is not None:
        V = modality_balanced_expand(V, nn, min(k2, k1), np.asarray(modality, bool))
    elif k2 > 1:
        V = query_expand(V, nn, min(k2, k1))
    clock("encodings")
    if device is not None:
        dist = jaccard_from_encodings(V, device, max_distance, budget or GPU_TRIPLET_BUDGET)
    else:
        dist = _host_overlap(V, max_distance, budget or TRIPLET_BUDGET, workers)
    clock("overlap")
    return dist


class _Clock:
    """Records the seconds since the previous call under each stage name."""

    def __init__(self, sink: dict[str, float] | None):
        self.sink, self.last = sink, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.sink is not None:
            self.sink[stage] = now - self.last
        self.last = now


def _host_overlap(
    V: sp.csr_matrix, max_distance: float | None, budget: int, workers: int | None
) -> sp.csr_matrix:
    Vc = V.tocsc()

    def block(rows: slice) -> sp.csr_matrix:
        S = min_overlap(V[rows], Vc).tocoo()  # duplicates already summed by the CSR build
        d = np.maximum(1 - S.data / (2 - S.data), 0).astype(np.float32)
        keep = slice(None) if max_distance is None else d <= max_distance
        # built from coordinates so exact 0.0 distances (the diagonal) stay stored
        return sp.csr_matrix((d[keep], (S.row[keep], S.col[keep])), shape=S.shape)

    parts = thread_map(block, row_blocks(V, Vc, budget), workers)  # in order: deterministic
    return sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
