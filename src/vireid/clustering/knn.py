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

Approximate search (``ann=Ann(...)``), for the self-join of clustering (queries = data):
* ``ivf``: faiss k-means cells (``nlist``, default 2·√N, trained on ``train_points`` per
  cell); every point is searched in its ``nprobe`` nearest cells. The search runs cell by
  cell: the points that probe a cell form one (queries × cell members) matrix product,
  merged into a faiss result heap, so the O(N²·D) exact product shrinks to about
  N²·D·nprobe/nlist at BLAS speed. (faiss's own ``IndexIVFFlat.search`` scans query by
  query, 2× slower here; ``contrib.big_batch_search`` does the same per-cell product but
  prints progress at every verbosity.) Memory: the features, N·nprobe cell ids, the
  (N, k) heap and one cell's (queries × members) tile. With a faiss that has GPUs it
  is faiss's ``IndexIVFFlat`` on the GPUs instead.
* ``hnsw``: faiss ``IndexHNSWFlat`` (``m`` links per node, ``ef_construction``,
  ``ef_search`` ≥ k): a graph of N·m links besides a copy of the features.
Returned distances are exact for the neighbours found; rows that come back short (IVF
cells holding fewer than k points in all) are searched exactly, and a point its search
missed is put back in column 0. On a CUDA device (the torch backend) faiss-gpu runs
``ivf``; without it, and for ``hnsw`` (a host graph would be slower than the GPU's exact
search), the torch search stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..utils.logging import get_logger

log = get_logger(__name__)

STABLE_SORT_MAX = 65536  # above this many points the torch backend uses top-k per tile
IVF_TILE = 1 << 24  # ivf: floats in one (queries × cell members) distance tile (64 MB)


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


@dataclass(frozen=True)
class Ann:
    """Approximate neighbour search settings (see the module docstring)."""

    method: Literal["ivf", "hnsw"] = "ivf"
    nlist: int = 0  # ivf cells; 0 = round(2·√N)
    nprobe: int = 8  # ivf cells searched per point
    train_points: int = 64  # ivf k-means training sample per cell
    niter: int = 10  # ivf k-means iterations
    spherical: bool = False  # ivf: unit-norm centroids
    m: int = 32  # hnsw links per node
    ef_construction: int = 64
    ef_search: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("ivf", "hnsw"):
            raise ValueError(f"approximate knn {self.method!r}: expected ivf or hnsw")
        for name in ("nprobe", "train_points", "m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                raise ValueError(f"Ann.{name}={getattr(self, name)}: expected >= 1")
        if self.nlist < 0:
            raise ValueError(f"Ann.nlist={self.nlist}: expected >= 0 (0 = 2·sqrt(N))")


def _nlist(n: int, p: Ann) -> int:
    return min(n, p.nlist or max(1, round(2 * np.sqrt(n))))


def _train_sample(x: np.ndarray, nlist: int, p: Ann) -> np.ndarray:
    n = len(x)
    rng = np.random.default_rng(p.seed)
    return x[np.sort(rng.choice(n, min(n, nlist * p.train_points), replace=False))]


def _ivf_knn(x: np.ndarray, k: int, p: Ann) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    n, d = x.shape
    nlist = _nlist(n, p)
    quant = faiss.IndexFlatL2(d)
    km = faiss.Clustering(d, nlist)
    km.seed, km.niter, km.spherical = p.seed, p.niter, p.spherical
    km.min_points_per_centroid = 1  # the sample size is ours to choose (no warning)
    km.max_points_per_centroid = p.train_points
    km.train(_train_sample(x, nlist, p), quant)
    _, cells = quant.search(x, min(p.nprobe, nlist))  # (N, nprobe), own cell first
    own = cells[:, 0]
    members = np.argsort(own, kind="stable")
    m_lim = np.searchsorted(own[members], np.arange(nlist + 1))
    flat = cells.ravel()
    visits = np.argsort(flat, kind="stable")
    v_lim = np.searchsorted(flat[visits], np.arange(nlist + 1))
    visitor = visits // cells.shape[1]
    del flat, visits, cells
    xt = torch.from_numpy(x)
    sq = (xt * xt).sum(1)
    heap = faiss.ResultHeap(n, k)
    for c in range(nlist):
        mem = torch.from_numpy(members[m_lim[c] : m_lim[c + 1]])
        visit = torch.from_numpy(visitor[v_lim[c] : v_lim[c + 1]])
        if len(mem) == 0:
            continue
        xm = xt.index_select(0, mem)
        step = max(1, IVF_TILE // len(mem))  # (queries × members) tile ≤ IVF_TILE floats
        for q in visit.split(step):
            dd = torch.addmm(sq[mem][None], xt.index_select(0, q), xm.T, alpha=-2)
            dd.add_(sq[q][:, None]).clamp_min_(0)
            ids = mem.expand(len(q), -1)
            if len(mem) > k:  # only each query's k best of the cell go to the heap
                dd, pos = dd.topk(k, dim=1, largest=False, sorted=False)
                ids = mem[pos]
            heap.add_result_subset(q.numpy(), dd.numpy(), ids.contiguous().numpy())
    heap.finalize()
    return heap.D, heap.I


def _ivf_knn_gpu(x: np.ndarray, k: int, p: Ann) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    n, d = x.shape
    nlist = _nlist(n, p)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    index.cp.seed, index.cp.niter, index.cp.min_points_per_centroid = p.seed, 10, 1
    index = faiss.index_cpu_to_all_gpus(index)
    index.train(_train_sample(x, nlist, p))
    index.add(x)
    faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", min(p.nprobe, nlist))
    d2, idx = index.search(x, k)
    return d2, idx.astype(np.int64)


def _hnsw_knn(x: np.ndarray, k: int, p: Ann) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexHNSWFlat(x.shape[1], p.m)
    index.hnsw.efConstruction = p.ef_construction
    index.add(x)
    index.hnsw.efSearch = max(p.ef_search, k)
    return index.search(x, k)


def _complete(x: np.ndarray, d2: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, ...]:
    """Exact search for rows that came back short; a missed query itself goes first."""
    import faiss

    short = np.flatnonzero((idx < 0).any(1))
    if len(short):
        d2[short], idx[short] = faiss.knn(x[short], x, idx.shape[1])
    miss = np.flatnonzero(~(idx == np.arange(len(idx))[:, None]).any(1))
    if len(miss):
        idx[miss] = np.concatenate([miss[:, None], idx[miss, :-1]], 1)
        d2[miss] = np.concatenate([np.zeros((len(miss), 1), d2.dtype), d2[miss, :-1]], 1)
    return d2, idx


def ann_route(method: str, on_cuda: bool, faiss_gpus: int) -> str:
    """Which search runs: ``ivf_gpu`` (faiss-gpu), ``ivf``/``hnsw`` (faiss on the host) or
    ``exact`` (the torch search on a CUDA device without faiss-gpu, and hnsw there)."""
    if method == "ivf" and faiss_gpus > 0:
        return "ivf_gpu"
    if on_cuda:
        return "exact"
    return method


def _faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def _approximate(feats, k: int, p: Ann, route: str) -> tuple[np.ndarray, np.ndarray]:
    x = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else feats
    x = np.ascontiguousarray(x, dtype=np.float32)
    search = {"ivf": _ivf_knn, "ivf_gpu": _ivf_knn_gpu, "hnsw": _hnsw_knn}[route]
    return _complete(x, *search(x, k, p))


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
        route = ann_route(ann.method, on_cuda and backend == "torch", _faiss_gpus())
        if route != "exact":
            return _approximate(feats, k, ann, route)
        log.info("knn=%s on a CUDA device: the torch search stays exact", ann.method)
    if backend == "faiss":
        x = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else feats
        return _faiss_knn(np.ascontiguousarray(x, dtype=np.float32), k)
    x = feats if isinstance(feats, torch.Tensor) else torch.from_numpy(np.asarray(feats))
    x = x.to(device or x.device, dtype=torch.float32)
    return _torch_knn(x, k, block)
