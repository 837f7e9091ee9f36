"""k-nearest neighbours by L2 distance, one signature for every backend: exact by
default, approximate (faiss IVF or HNSW) on request.

``knn(feats, k)`` returns ``(dist2, idx)``: (N, k) squared L2 distances (float32) and
indices (int64), ascending, the query itself normally in column 0.

Exact backends:
* ``faiss``: exact brute-force search (``faiss.knn`` on CPU, reading the array in place,
  queries in blocks of 256–4096 rows with a ≤ 256 MB distance tile where N allows; a flat
  GPU index when the installed faiss has GPUs): O(N·D + N·k) memory plus the tile.
* ``torch``: blocked matrix products on the tensor's device (CUDA when given a CUDA
  tensor or ``device="cuda"``): a (block × N) distance tile at a time, so memory is
  O(N·D + block·N + N·k).

Ties are broken by the smaller index in the torch backend up to ``STABLE_SORT_MAX`` points
(stable sort of each tile); above it, and in faiss, the order among exact ties is
implementation-defined.

Approximate search (``ann=Ann(...)``: faiss IVF or HNSW, optionally on a PCA projection
with exact re-ranking) is in ``knn_approx``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..utils.logging import get_logger
from .knn_approx import Ann, ann_route, approximate, faiss_gpus

log = get_logger(__name__)

STABLE_SORT_MAX = 65536  # above this many points the torch backend uses top-k per tile


def _faiss_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    if hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(x.shape[1]))
        index.add(x)
        d, i = index.search(x, k)
        return d, i.astype(np.int64)
    # brute-force search reading the array in place (no index copy of the N × D data),
    # queries in blocks so faiss's (block × N) distance tile stays near 256 MB; fewer than
    # a few hundred rows per block starve the matrix product (2× slower at 83 rows)
    step = min(4096, max(256, (256 << 20) // (4 * len(x))))
    d = np.empty((len(x), k), np.float32)
    i = np.empty((len(x), k), np.int64)
    for s in range(0, len(x), step):
        d[s : s + step], i[s : s + step] = faiss.knn(x[s : s + step], x, k)
    return d, i


def _torch_knn(x: torch.Tensor, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    sq = (x * x).sum(1)
    out_d = torch.empty(n, k, dtype=torch.float32)
    out_i = torch.empty(n, k, dtype=torch.int64)
    for s in range(0, n, block):
        e = min(n, s + block)
        d = (sq[s:e, None] + sq[None] - 2 * x[s:e] @ x.T).clamp_min_(0)
        if n <= STABLE_SORT_MAX:
            # full stable sort keeps index order among ties (top-k does not)
            vals, idx = torch.sort(d, dim=1, stable=True)
            vals, idx = vals[:, :k], idx[:, :k]
        else:  # large N: top-k (ties in arbitrary order, like faiss)
            vals, idx = torch.topk(d, k, dim=1, largest=False, sorted=True)
        out_d[s:e] = vals.float().cpu()
        out_i[s:e] = idx.cpu()
    return out_d.numpy(), out_i.numpy()


def knn(
    feats,
    k: int,
    backend: str = "auto",
    block: int = 1024,
    device: str | None = None,
    ann: Ann | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of every row of ``feats`` (N, D) among all rows; ``ann``:
    approximate search instead of exact (None)."""
    n = len(feats)
    if not 1 <= k <= n:
        raise ValueError(f"k={k}: expected 1 <= k <= N={n}")
    on_cuda = (device or "").startswith("cuda") or (
        isinstance(feats, torch.Tensor) and feats.is_cuda
    )
    if backend == "auto":
        backend = "torch" if on_cuda else "faiss"
    if backend not in ("faiss", "torch"):
        raise ValueError(f"knn backend {backend!r}: expected auto, faiss or torch")
    if ann is not None:
        route = ann_route(ann.method, on_cuda and backend == "torch", faiss_gpus())
        if route != "exact":
            return approximate(feats, k, ann, route)
        log.info("knn=%s on a CUDA device: the torch search stays exact", ann.method)
    if backend == "faiss":
        x = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else feats
        return _faiss_knn(np.ascontiguousarray(x, dtype=np.float32), k)
    x = feats if isinstance(feats, torch.Tensor) else torch.from_numpy(np.asarray(feats))
    x = x.to(device or x.device, dtype=torch.float32)
    return _torch_knn(x, k, block)
