"""Sparse k-reciprocal building blocks (Zhong et al., CVPR 2017), shared by test-time
re-ranking (``vireid.evaluation.rerank``) and the clustering Jaccard distance
(``vireid.clustering.jaccard``).

Every N × N object is a scipy sparse matrix: the k-reciprocal sets R and expanded sets E
(O(N·k1) entries), the encodings V (softmax of −d over E) and their query-expanded V'
(O(N·k1·k2)), and the min-overlap Σ_k min(V'_ik, V'_jk) only where two rows overlap.
``knn`` holds each row's nearest neighbours in ascending distance, itself first; the
number of columns it has is part of the definition (see ``expanded_sets``).
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from ..utils.parallel import thread_map

ROW_BLOCK = 4096  # rows per block for the O(rows · k²) temporaries


def _krecip_mask(knn: np.ndarray, k: int) -> np.ndarray:
    """(N, k+1) bool: forward neighbour knn[i, r] is k-reciprocal (i is in its top k+1).
    Columns beyond ``knn``'s width are silently dropped (the community's quirk)."""
    fwd = knn[:, : k + 1]
    out = np.empty(fwd.shape, dtype=bool)

    def block(s: int) -> None:  # (block, k+1, k+1) at a time
        back = knn[fwd[s : s + ROW_BLOCK], : k + 1]
        out[s : s + ROW_BLOCK] = (back == np.arange(s, s + len(back))[:, None, None]).any(-1)

    thread_map(block, range(0, len(knn), ROW_BLOCK))
    return out


def _set_matrix(knn: np.ndarray, mask: np.ndarray, n: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(knn)), mask.sum(1))
    cols = knn[:, : mask.shape[1]][mask]
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(knn), n))


def expanded_sets(knn: np.ndarray, k1: int) -> sp.csr_matrix:
    """E_i = R(i, k1) ∪ {R(c, round(k1/2)) : c ∈ R(i, k1), |R(c)∩R(i)| > 2/3 |R(c)|}."""
    n = len(knn)
    h = int(np.around(k1 / 2))
    R = _set_matrix(knn, _krecip_mask(knn, k1), n)
    H = _set_matrix(knn, _krecip_mask(knn, h), n)
    size = np.asarray(H.sum(1)).ravel()
    HT = H.T.tocsr()  # once: a product with the CSC view would convert it in every block

    def block(s: int) -> tuple[np.ndarray, np.ndarray]:
        Rb = R[s : s + ROW_BLOCK]
        # (i, c) → |R(c, h) ∩ R(i, k1)|, kept only for candidates c ∈ R(i, k1)
        ov = (Rb @ HT).multiply(Rb).tocoo()
        keep = ov.data > (2.0 / 3.0) * size[ov.col]
        return ov.row[keep] + s, ov.col[keep]

    parts = thread_map(block, range(0, n, ROW_BLOCK))
    r = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    C = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, n))
    E = (R + C @ H).tocsr()
    E.data[:] = 1.0
    return E


def encodings(E: sp.csr_matrix, pair_dist) -> sp.csr_matrix:
    """V[i, e] = exp(-D[i, e]) / Σ_e exp(-D[i, e]) over e ∈ E_i (float32)."""
    E = E.tocoo()
    d = pair_dist(E.row, E.col).astype(np.float32)
    w = np.exp(-d)
    V = sp.csr_matrix((w, (E.row, E.col)), shape=E.shape)
    rs = np.asarray(V.sum(1)).ravel()
    return sp.diags(1.0 / rs).astype(np.float32) @ V


def query_expand(V: sp.csr_matrix, knn: np.ndarray, k2: int) -> sp.csr_matrix:
    if k2 == 1:
        return V
    n = V.shape[0]
    A = sp.csr_matrix(
        (np.full(n * k2, 1.0 / k2, np.float32), (np.repeat(np.arange(n), k2), knn[:, :k2].ravel())),
        shape=(n, n),
    )
    return (A @ V).tocsr()


DENSE_ACCUMULATOR_BYTES = 16 << 20  # per row block, when rows × N fits (see min_overlap)
TRIPLET_BUDGET = 1 << 20  # (i, j, value) triplets per row block: ~40 MB of temporaries


def min_overlap(Vq: sp.csr_matrix, other: sp.csc_matrix) -> sp.csr_matrix:
    """S[i, j] = Σ_k min(Vq[i, k], other[j, k]) (float32), stored only where the rows
    overlap.

    ``other`` is in CSC form (its columns are the encoding dimensions k), so the items j
    sharing dimension k are one slice: every nonzero (i, k) of ``Vq`` expands into the
    triplets (i, j, min(Vq[i, k], other[j, k])). Work and memory are the number of triplets,
    Σ_i Σ_{k ∈ row i} nnz(col k); callers bound it with ``row_blocks``.

    Summation without sorting: the j actually touched by the block are compacted to local
    columns 0..m−1 (a mark array of length M, then its nonzeros, already in order), and the
    triplets are summed by ``bincount`` into a dense (rows × m) accumulator. When even that
    exceeds ``DENSE_ACCUMULATOR_BYTES`` the triplets go through a sparse build (a sort).
    """
    rows, n_other = Vq.shape[0], other.shape[0]
    q = Vq.tocoo()
    counts = np.diff(other.indptr)[q.col]
    total = int(counts.sum())
    if total == 0:
        return sp.csr_matrix((rows, n_other), dtype=np.float32)
    offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.repeat(other.indptr[q.col], counts) + offs
    del offs
    vals = np.minimum(np.repeat(q.data, counts), other.data[idx])
    r = np.repeat(q.row, counts)
    c = other.indices[idx]
    del idx
    mark = np.zeros(n_other, dtype=bool)
    mark[c] = True
    cols = np.flatnonzero(mark)  # the touched columns, ascending
    m = len(cols)
    if rows * m * 8 > DENSE_ACCUMULATOR_BYTES:  # summed in float64 like bincount below
        S = sp.csr_matrix((vals.astype(np.float64), (r, c)), shape=(rows, n_other))
        return S.astype(np.float32)
    local = np.empty(n_other, np.int64)
    local[cols] = np.arange(m)
    keys = r.astype(np.int64) * m + local[c]
    acc = np.bincount(keys, weights=vals, minlength=rows * m)
    touched = np.zeros(rows * m, dtype=bool)
    touched[keys] = True
    flat = np.flatnonzero(touched)  # row-major and ascending in local (= global) column
    indptr = np.zeros(rows + 1, np.int64)
    np.cumsum(np.bincount(flat // m, minlength=rows), out=indptr[1:])
    return sp.csr_matrix(
        (acc[flat].astype(np.float32), cols[flat % m], indptr), shape=(rows, n_other)
    )


def row_blocks(V: sp.csr_matrix, other: sp.csc_matrix, budget: int = TRIPLET_BUDGET) -> list[slice]:
    """Split V's rows into consecutive blocks of at most ``budget`` ``min_overlap``
    triplets (a single row costing more stays alone)."""
    col_nnz = np.diff(other.indptr).astype(np.int64)
    ones = V.copy()
    ones.data[:] = 1
    cost = np.asarray(ones @ col_nnz).ravel()
    block_id = np.maximum(np.cumsum(cost) - 1, 0) // budget
    cuts = [0, *(np.flatnonzero(np.diff(block_id)) + 1).tolist(), len(cost)]
    return [slice(a, b) for a, b in itertools.pairwise(cuts) if b > a]
