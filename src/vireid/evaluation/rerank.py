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

from ..clustering.kreciprocal import encodings, expanded_sets, min_overlap, query_expand, row_blocks


def _combine(S: sp.csr_matrix, d_qg: np.ndarray, lam: float) -> np.ndarray:
    J = np.ones(S.shape, np.float32)
    S = S.tocoo()
    J[S.row, S.col] = 1 - S.data / (2 - S.data)
    return (1 - lam) * J + lam * d_qg


def _rerank(knn, pair_dist, d_qg_block, nq, n, k1, k2, lam):
    V = query_expand(encodings(expanded_sets(knn, k1), pair_dist), knn, k2)
    gallery = V[nq:].tocsc()
    out = np.empty((nq, n - nq), np.float32)
    for rows in row_blocks(V[:nq], gallery):
        S = min_overlap(V[rows], gallery)
        out[rows] = _combine(S, d_qg_block(rows.start, rows.stop), lam)
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
