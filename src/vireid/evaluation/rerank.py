"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) on a sparse neighbour graph.

Same output as the dense reference (zhunzhong07/person-re-ranking ``re_ranking``;
protocols.md §5.1) for tie-free distances, but every N × N object is a sparse matrix with
O(N·k1²) entries: the k1-NN lists, the k-reciprocal sets, the expanded sets E, the
encodings V (softmax of −D over E) and their k2-query-expanded versions V'. The Jaccard
term Σ_k min(V'_ik, V'_jk) is evaluated only where two encodings overlap (elsewhere the
Jaccard distance is exactly 1).

Memory model: O(N·k1²) for the graph and encodings plus the (n_query × n_gallery) output;
``rerank_features`` never forms the N × N distance matrix (kNN via faiss, distances of the
needed pairs from dot products, row maxima streamed in blocks).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _krecip_mask(knn: np.ndarray, k: int) -> np.ndarray:
    """(N, k+1) bool: forward neighbour knn[i, r] is k-reciprocal (i is in its top k+1)."""
    fwd = knn[:, : k + 1]
    back = knn[fwd, : k + 1]  # (N, k+1, k+1)
    return (back == np.arange(len(knn))[:, None, None]).any(-1)


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
    overlap = (R @ H.T).multiply(R)  # (i, c) → |R(c, h) ∩ R(i, k1)| for c ∈ R(i)
    size = np.asarray(H.sum(1)).ravel()
    overlap = overlap.tocoo()
    keep = overlap.data > (2.0 / 3.0) * size[overlap.col]
    C = sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (overlap.row[keep], overlap.col[keep])), shape=(n, n)
    )
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


def min_overlap(Vq: sp.csr_matrix, Vall: sp.csc_matrix, cols: slice) -> sp.csr_matrix:
    """S[i, j] = Σ_k min(Vq[i, k], Vall[j, k]) for j in ``cols``, only where rows overlap."""
    Vc = Vall[cols].tocsc()
    q = Vq.tocoo()
    counts = np.diff(Vc.indptr)[q.col]
    starts = Vc.indptr[q.col]
    total = int(counts.sum())
    if total == 0:
        return sp.csr_matrix((Vq.shape[0], Vc.shape[0]), dtype=np.float32)
    offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.repeat(starts, counts) + offs
    vals = np.minimum(np.repeat(q.data, counts), Vc.data[idx])
    return sp.csr_matrix(
        (vals, (np.repeat(q.row, counts), Vc.indices[idx])), shape=(Vq.shape[0], Vc.shape[0])
    )


def _combine(S: sp.csr_matrix, d_qg: np.ndarray, lam: float) -> np.ndarray:
    J = np.ones(S.shape, np.float32)
    S = S.tocoo()
    J[S.row, S.col] = 1 - S.data / (2 - S.data)
    return (1 - lam) * J + lam * d_qg


def _rerank(knn, pair_dist, d_qg_block, nq, n, k1, k2, lam, block=1024):
    V = query_expand(encodings(expanded_sets(knn, k1), pair_dist), knn, k2)
    Vcsc = V.tocsc()
    out = np.empty((nq, n - nq), np.float32)
    for s in range(0, nq, block):
        e = min(nq, s + block)
        S = min_overlap(V[s:e], Vcsc, slice(nq, n))
        out[s:e] = _combine(S, d_qg_block(s, e), lam)
    return out


def re_ranking(
    q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20, k2: int = 6, lam: float = 0.3
) -> np.ndarray:
    """Re-ranked (n_query, n_gallery) distances from the three distance matrices, as the
    reference ``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)``."""
    nq = q_g.shape[0]
    D = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32) ** 2
    D = (D / D.max(axis=0)).T  # column-max normalisation, then transpose (as the reference)
    knn = np.argsort(D, axis=1)[:, : k1 + 1]
    return _rerank(knn, lambda r, c: D[r, c], lambda s, e: D[s:e, nq:], nq, len(D), k1, k2, lam)


def rerank_features(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lam: float = 0.3,
    block: int = 4096,
) -> np.ndarray:
    """Re-ranking from features with Euclidean input distances, without any N × N matrix."""
    import faiss

    X = np.ascontiguousarray(np.concatenate([q_feats, g_feats]), dtype=np.float32)
    n, nq = len(X), len(q_feats)
    sq = (X**2).sum(1)
    rowmax = np.empty(n, np.float32)
    for s in range(0, n, block):  # D is symmetric: column max = row max
        d2 = np.maximum(sq[s : s + block, None] + sq[None] - 2 * X[s : s + block] @ X.T, 0)
        rowmax[s : s + block] = d2.max(1)
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    _, knn = index.search(X, k1 + 1)

    def pair(r, c):  # normalised D[r, c] = d²(r, c) / max_i d²(i, r)
        d2 = np.maximum(sq[r] + sq[c] - 2 * np.einsum("ij,ij->i", X[r], X[c]), 0)
        return d2 / rowmax[r]

    def qg(s, e):
        d2 = np.maximum(sq[s:e, None] + sq[None, nq:] - 2 * X[s:e] @ X[nq:].T, 0)
        return d2 / rowmax[s:e, None]

    return _rerank(knn.astype(np.int64), pair, qg, nq, n, k1, k2, lam)
