"""The min-overlap / Jaccard stage on a torch device (the GPU path of ``jaccard_distance``).

Same triplet formulation as ``kreciprocal.min_overlap``: every nonzero (i, k) of the
query-expanded encodings V expands into the triplets (i, j, min(V[i, k], V[j, k])) over
the rows j sharing dimension k. On the device a block's triplets are keyed i·N + j,
``torch.unique`` sorts the keys (so the output is already in CSR order) and the values
are summed into the unique keys in float64. Sums of a few hundred float32 values are
exact in float64 whatever the order, so the atomics' order does not matter and the result
equals the NumPy path (which also accumulates in float64) bit for bit after the cast.

Only the entries that survive ``max_distance`` leave the device, so host memory is the
output plus V. Device memory: V twice (CSR + CSC, 16 bytes per nonzero) + ~80 bytes per
triplet of one block (``budget`` triplets).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .kreciprocal import row_blocks

GPU_TRIPLET_BUDGET = 1 << 25  # triplets per block: ~2.7 GB of device temporaries


def _to_device(m: sp.csr_matrix | sp.csc_matrix, device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(m.indptr.astype(np.int64)).to(device),
        torch.from_numpy(m.indices.astype(np.int64)).to(device),
        torch.from_numpy(m.data.astype(np.float32)).to(device),
    )


def jaccard_from_encodings(
    V: sp.csr_matrix,
    device: str | torch.device,
    max_distance: float | None = None,
    budget: int = GPU_TRIPLET_BUDGET,
) -> sp.csr_matrix:
    """(N, N) CSR Jaccard distances 1 − s/(2 − s), s = Σ_k min(V[i, k], V[j, k]),
    computed on ``device``; entries above ``max_distance`` are dropped (the diagonal,
    0, always stays)."""
    n = V.shape[0]
    V = V.tocsr()
    V.sort_indices()
    Vc = V.tocsc()
    q_ptr_host = V.indptr.astype(np.int64)
    q_ptr, q_idx, q_val = _to_device(V, device)
    c_ptr, c_idx, c_val = _to_device(Vc, device)
    col_nnz = c_ptr[1:] - c_ptr[:-1]
    out_rows, out_cols, out_vals = [], [], []
    for blk in row_blocks(V, Vc, budget):
        s, e = blk.start, blk.stop
        a, b = int(q_ptr_host[s]), int(q_ptr_host[e])
        if a == b:
            continue
        row_nnz = q_ptr[s + 1 : e + 1] - q_ptr[s:e]
        q_row = torch.repeat_interleave(torch.arange(s, e, device=device), row_nnz)
        q_col, q_v = q_idx[a:b], q_val[a:b]
        counts = col_nnz[q_col]
        total = int(counts.sum())
        if total == 0:
            continue
        # position t of triplet group g reads Vc entry c_ptr[col_g] + (t − first_t(g))
        first = torch.cumsum(counts, 0) - counts
        src = torch.repeat_interleave(c_ptr[q_col] - first, counts, output_size=total)
        src += torch.arange(total, device=device)
        key = torch.repeat_interleave(q_row, counts, output_size=total) * n + c_idx[src]
        val = torch.minimum(torch.repeat_interleave(q_v, counts, output_size=total), c_val[src])
        del src
        uniq, inv = torch.unique(key, sorted=True, return_inverse=True)
        del key
        acc = torch.zeros(len(uniq), dtype=torch.float64, device=device)
        acc.index_add_(0, inv, val.double())
        del inv, val
        sim = acc.float()
        dist = torch.clamp_min(1 - sim / (2 - sim), 0)
        if max_distance is not None:
            keep = dist <= max_distance
            uniq, dist = uniq[keep], dist[keep]
        uniq = uniq.cpu().numpy()
        out_rows.append(uniq // n)
        out_cols.append(uniq % n)
        out_vals.append(dist.cpu().numpy())
    rows = np.concatenate(out_rows) if out_rows else np.zeros(0, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    cols = np.concatenate(out_cols) if out_cols else np.zeros(0, np.int64)
    vals = np.concatenate(out_vals) if out_vals else np.zeros(0, np.float32)
    # keys were sorted per block and blocks are in row order: already canonical CSR
    return sp.csr_matrix((vals, cols, indptr), shape=(n, n))
