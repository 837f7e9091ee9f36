"""Approximate k-nearest neighbours for the self-join of clustering (queries = data),
behind ``knn(feats, k, ann=Ann(...))``; see ``knn`` for the exact backends.

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
  ``ef_search`` ≥ k; ``metric`` auto = an L2 graph on the full features, an inner-product
  graph on a PCA projection): a graph of N·m
  links besides a copy of the (searched) features.
* ``pca_dim`` > 0 (either method): the search runs on the features projected to their
  first ``pca_dim`` principal components (randomized PCA fitted on ``pca_train``
  samples), asking for ``rerank``·k candidates, which are then re-ranked by their exact
  distances on the full features. Why: the search cost is linear in D, and the
  few same-identity neighbours that decide the clusters stand far closer than the rest,
  so a projection keeps them among the candidates while the order of the far, nearly
  equidistant tail (which the k-reciprocal test mostly rejects) is the approximate part.
  Memory: the (N, pca_dim) projection and the (N, rerank·k) candidates besides the index.

Every result is re-ranked by exact squared L2 on the full features, so returned
distances are exact for the neighbours found; rows that come back short (IVF
cells holding fewer than k points in all) are searched exactly, and a point its search
missed is put back in column 0. On a CUDA device (the torch backend) faiss-gpu runs
``ivf``; without it, and for ``hnsw`` (a host graph would be slower than the GPU's exact
search), the torch search stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch

from ..utils.parallel import thread_map

IVF_TILE = 1 << 24  # ivf: floats in one (queries × cell members) distance tile (64 MB)
RERANK_BYTES = 32 << 20  # re-rank: gathered candidate features per block (per thread)


@dataclass(frozen=True)
class Ann:
    """Approximate neighbour search settings (see the module docstring)."""

    method: Literal["ivf", "hnsw", "bf16"] = "ivf"  # bf16: the exact torch search's variant
    nlist: int = 0  # ivf cells; 0 = round(2·√N)
    nprobe: int = 8  # ivf cells searched per point
    train_points: int = 64  # ivf k-means training sample per cell
    niter: int = 10  # ivf k-means iterations
    spherical: bool = False  # ivf: unit-norm centroids
    m: int = 16  # hnsw links per node
    ef_construction: int = 40
    ef_search: int = 64
    # hnsw graph metric: auto = l2 on the full features, ip on a PCA projection (see _hnsw_knn)
    metric: Literal["auto", "ip", "l2"] = "auto"
    pca_dim: int = 0  # search on this many principal components (0 = the full features)
    pca_train: int = 8192  # samples the PCA is fitted on
    rerank: int = 2  # with pca_dim, and bf16: candidates per point = rerank·k, re-ranked exactly
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("ivf", "hnsw", "bf16"):
            raise ValueError(f"approximate knn {self.method!r}: expected ivf, hnsw or bf16")
        if self.metric not in ("auto", "ip", "l2"):
            raise ValueError(f"Ann.metric={self.metric!r}: expected auto, ip or l2")
        names = ("nprobe", "train_points", "m", "ef_construction", "ef_search", "rerank")
        for name in (*names, "pca_train"):
            if getattr(self, name) < 1:
                raise ValueError(f"Ann.{name}={getattr(self, name)}: expected >= 1")
        if self.nlist < 0:
            raise ValueError(f"Ann.nlist={self.nlist}: expected >= 0 (0 = 2·sqrt(N))")
        if self.pca_dim < 0:
            raise ValueError(f"Ann.pca_dim={self.pca_dim}: expected >= 0 (0 = no PCA)")


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

    # p.metric is ip or l2 here (approximate() resolves auto). On a PCA projection an
    # inner-product graph found 0.94 of each point's exact 10 nearest among 60 candidates
    # against 0.70 with an L2 graph (12k × 2048 isotropic benchmark features, m 16); on
    # the full features L2 is the exact order, and inner product is not: clustering
    # features are flip-averaged and not re-normalised (norms below 1, unequal), and an
    # IP graph's k candidates then capped recall at 0.974 where an L2 graph reached 0.998
    # (a trained network's 34k × 256 features, results/cluster_real_agw.json)
    metric = faiss.METRIC_INNER_PRODUCT if p.metric == "ip" else faiss.METRIC_L2
    index = faiss.IndexHNSWFlat(x.shape[1], p.m, metric)
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


def faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def pca_project(x: np.ndarray, dim: int, samples: int, seed: int = 0) -> np.ndarray:
    """(N, dim) projection of ``x`` (N, D) on its first ``dim`` principal components,
    fitted on ``samples`` rows drawn without replacement (at most that many components).

    Randomized PCA (``torch.pca_lowrank``, two power iterations): faiss's ``PCAMatrix``
    runs a full D × D eigendecomposition, 27 s at D = 2048 on 2 cores against ~3 s; the
    components only choose candidates, which are re-ranked on the full features."""
    rng = np.random.default_rng(seed)
    fit = torch.from_numpy(x[np.sort(rng.choice(len(x), min(len(x), samples), replace=False))])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, _, v = torch.pca_lowrank(fit, q=min(dim, *fit.shape), center=True, niter=2)
    # no centring: a shift changes no distance
    return (torch.from_numpy(x) @ v).numpy()


def rerank(x: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k of each row's candidates (N, C) nearest by exact squared L2 distance on
    ``x`` (N, D), ascending (ties: the earlier candidate). Blocks of rows gather their
    candidates' features (≤ ``RERANK_BYTES`` each), on all cores."""
    n, c = cand.shape
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.empty((n, c), np.float32)
    step = max(1, RERANK_BYTES // (4 * c * x.shape[1]))

    def block(s: int) -> None:
        e = min(n, s + step)
        xc = torch.from_numpy(x[cand[s:e].ravel()]).view(e - s, c, -1)
        dot = torch.bmm(xc, torch.from_numpy(x[s:e])[:, :, None])[..., 0].numpy()
        d2[s:e] = np.maximum(sq[s:e, None] + sq[cand[s:e]] - 2 * dot, 0)

    thread_map(block, range(0, n, step))
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d2, order, 1), np.take_along_axis(cand, order, 1)


def approximate(feats, k: int, p: Ann, route: str) -> tuple[np.ndarray, np.ndarray]:
    """Approximate (dist2, idx) of ``feats`` (N, D) by route (``ann_route``)."""
    x = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else feats
    x = np.ascontiguousarray(x, dtype=np.float32)
    search = {"ivf": _ivf_knn, "ivf_gpu": _ivf_knn_gpu, "hnsw": _hnsw_knn}[route]
    reduce = 0 < p.pca_dim < x.shape[1]
    if p.metric == "auto":
        p = replace(p, metric="ip" if reduce else "l2")
    y = pca_project(x, p.pca_dim, p.pca_train, p.seed) if reduce else x
    _, cand = search(y, min(len(x), p.rerank * k if reduce else k), p)
    short = (cand < 0).any(1)  # searched exactly by _complete
    # exact L2 order and distances (an inner-product graph returns similarities)
    d2, idx = rerank(x, np.where(short[:, None], 0, cand), k)
    idx[short] = -1
    return _complete(x, d2, idx)
