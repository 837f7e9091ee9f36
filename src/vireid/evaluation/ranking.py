"""CMC, mAP and mINP exactly as the VI-ReID community computes them, vectorised.

Reference behaviour (``protocols.md`` §1.4, §2.3, §3, §4; mangye16/Cross-Modal-Re-ID-baseline
``eval_metrics.py``): rank the gallery by increasing distance, remove the protocol's excluded
gallery items, then per query

* AP   = mean over true matches of (#matches so far) / (1-based kept rank),
* INP  = #matches / (1-based kept rank of the last match)  (Ye et al., TPAMI 2021),
* CMC  = first-match CMC over *unique identities* (first occurrence kept) for SYSU and
  LLCM, over images for RegDB and user data,

averaged over *valid* queries only (at least one true match survives the removal).

Ties. The community code ranks with ``np.argsort`` (AGW) or a stable sort (MATLAB), so tied
distances keep the gallery's list order, and protocol galleries are listed sorted by
identity: a model with constant (or NaN, or collapsed) features then scores far above
chance, the labels leaking through the list order. By default tied distances are broken by
one seeded random permutation of the gallery (``tie_permutation``), independent of every
label, so a degenerate model scores at chance; rows without ties are ranked exactly as the
community ranks them (a tie-free row has one sorted order), so the metrics are equal to
``eval_metrics.py``'s number for number. ``sort_kind="quicksort"`` (AGW's ``np.argsort``
default) or ``"stable"`` (MATLAB) reproduces a reference's tie order when asked for.
Non-finite distances are refused.

Memory model: queries are processed in row blocks sized so the per-block work arrays stay
under ``block_bytes`` (about 10 arrays of ``rows × n_gallery`` 8-byte items), so a 100k ×
100k problem runs in bounded memory when the distances come from ``evaluate_features``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

RULES = ("sysu", "regdb", "llcm", "market")
DEFAULT_BLOCK_BYTES = 256 * 2**20
TIE_SEED = 0


@dataclass
class EvalResult:
    """Metrics of one trial. ``cmc``: float32 array (max_rank,); ``mAP``/``mINP`` fractions
    in [0, 1]; ``ap``/``inp``: per-query values (NaN for invalid queries)."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    ap: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    inp: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def summary(self) -> dict[str, float]:
        out = {f"R{k}": float(self.cmc[k - 1]) for k in (1, 5, 10, 20) if k <= len(self.cmc)}
        out.update(mAP=float(self.mAP), mINP=float(self.mINP))
        return out


def keep_mask(rule: str, q_pid, q_cam, gp, gc) -> np.ndarray | None:
    """Gallery items (in ranked order, rows × ng) that stay in the list; None = all."""
    if rule == "sysu":
        # SYSU-MM01: cam3 (IR) is in cam2's room, so cam3 probes skip every cam2 image,
        # whatever its identity (official MATLAB evaluation, AGW eval_sysu).
        return ~((q_cam[:, None] == 3) & (gc == 2))
    if rule in ("llcm", "market"):
        return ~((gp == q_pid[:, None]) & (gc == q_cam[:, None]))
    return None


def _unique_id_rank(
    gp_dense: np.ndarray, keep: np.ndarray | None, first: np.ndarray, n_ids: int
) -> np.ndarray:
    """Per row: number of distinct identities among kept items ranked before raw position
    ``first`` (so the unique-id rank of the first true match, 0-based)."""
    rows, ng = gp_dense.shape
    key = gp_dense if keep is None else np.where(keep, gp_dense, n_ids)  # n_ids: excluded
    # first raw position of each id per row: assign positions in reverse rank order so the
    # earliest occurrence is written last (NumPy keeps the last of repeated indices)
    first_pos = np.full((rows, n_ids + 1), ng, dtype=np.int32)
    r = np.broadcast_to(np.arange(rows)[:, None], key.shape)
    first_pos[r[:, ::-1], key[:, ::-1]] = np.arange(ng - 1, -1, -1, dtype=np.int32)
    return (first_pos[:, :n_ids] < first[:, None]).sum(1)


def non_finite_rows(x: np.ndarray) -> np.ndarray:
    """(N,) True where row i of ``x`` (N, ...) holds NaN or ±Inf: such rows are refused,
    never ranked (NaN distances would tie, and a tie order decides their score)."""
    return ~np.isfinite(x).reshape(len(x), -1).all(axis=1)


def tie_permutation(ng: int, seed: int = TIE_SEED) -> np.ndarray:
    """The gallery order that breaks tied distances: a seeded permutation of the gallery
    positions, so which tied item ranks first never depends on identities or cameras."""
    return np.random.default_rng(seed).permutation(ng)


def rank_gallery(
    dist: np.ndarray, sort_kind: str | None = None, tie_perm: np.ndarray | None = None
) -> np.ndarray:
    """Gallery indices (rows, ng) by increasing ``dist`` (rows, ng). ``sort_kind=None``:
    ties broken by ``tie_perm`` (default ``tie_permutation(ng)``); a ``sort_kind`` name:
    ``np.argsort``'s order of that kind (ties in list order, as the reference code)."""
    if sort_kind is not None:
        return np.argsort(dist, axis=1, kind=sort_kind)
    order = np.argsort(dist, axis=1)
    ranked = np.take_along_axis(dist, order, axis=1)
    tied = (ranked[:, 1:] == ranked[:, :-1]).any(axis=1)
    if tied.any():  # only these rows have more than one sorted order
        perm = tie_permutation(dist.shape[1]) if tie_perm is None else tie_perm
        order[tied] = perm[np.argsort(dist[tied][:, perm], axis=1, kind="stable")]
    return order


def _score_block(
    dist, q_pid, q_cam, g_pid, g_cam, g_dense, n_ids, rule, max_rank, sort_kind, tie_perm
):
    order = rank_gallery(dist, sort_kind, tie_perm)
    gp = g_pid[order]
    keep = keep_mask(rule, q_pid, q_cam, gp, g_cam[order])
    match = gp == q_pid[:, None]
    if keep is not None:
        match &= keep
    # Only the true matches matter for AP/INP/CMC: work on their coordinates (row-major,
    # so ascending rank inside each row) instead of on full rows × gallery arrays.
    r, c = np.nonzero(match)
    rows = len(order)
    n_match = np.bincount(r, minlength=rows)
    valid = n_match > 0
    kp = c if keep is None else (np.cumsum(keep, axis=1, dtype=np.int64)[r, c] - 1)
    starts = np.cumsum(n_match) - n_match
    j = np.arange(len(r)) - starts[r] + 1  # 1-based index of the match inside its row
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.bincount(r, weights=j / (kp + 1.0), minlength=rows) / n_match
        last = kp[np.maximum(starts + n_match - 1, 0)] if len(r) else np.zeros(rows, int)
        inp = n_match / (last + 1.0)
    first_raw = np.full(rows, 0)
    first_kept = np.full(rows, 0)
    if len(r):
        first_raw[valid] = c[starts[valid]]
        first_kept[valid] = kp[starts[valid]]
    if rule in ("sysu", "llcm"):
        rank0 = _unique_id_rank(g_dense[order], keep, first_raw, n_ids)
    else:
        rank0 = first_kept
    hits = (rank0[:, None] <= np.arange(max_rank)[None, :]) & valid[:, None]
    return hits.sum(0), np.where(valid, ap, np.nan), np.where(valid, inp, np.nan)


def _check(rule, q_pids, g_pids, q_camids, g_camids, shape):
    if rule not in RULES:
        raise ValueError(f"protocol rule {rule!r}: expected one of {RULES}")
    nq, ng = shape
    for name, arr, n in (
        ("q_pids", q_pids, nq),
        ("q_camids", q_camids, nq),
        ("g_pids", g_pids, ng),
        ("g_camids", g_camids, ng),
    ):
        if len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} entries; the distance matrix needs {n}")
    if ng == 0 or nq == 0:
        raise ValueError(f"empty query or gallery (dist shape {shape})")


def evaluate_blocks(
    get_block: Callable[[int, int], np.ndarray],
    nq: int,
    ng: int,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    rule: str,
    max_rank: int = 20,
    sort_kind: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> EvalResult:
    """Score rows ``get_block(start, stop) -> dist[start:stop]`` block by block."""
    _check(rule, q_pids, g_pids, q_camids, g_camids, (nq, ng))
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    max_rank = min(max_rank, ng)
    ids, g_dense = np.unique(g_pids, return_inverse=True)
    rows = max(1, int(block_bytes // (ng * 8 * 10)))
    tie_perm = tie_permutation(ng)
    hits = np.zeros(max_rank, np.int64)
    ap = np.empty(nq)
    inp = np.empty(nq)
    for s in range(0, nq, rows):
        e = min(nq, s + rows)
        block = np.asarray(get_block(s, e))
        bad = non_finite_rows(block)
        if bad.any():
            row = s + int(np.argmax(bad))
            raise ValueError(
                f"distance matrix: non-finite values (NaN/Inf) in query row {row}; "
                "expected finite distances (check the features for NaN/Inf or overflow)"
            )
        h, ap[s:e], inp[s:e] = _score_block(
            block,
            q_pids[s:e],
            q_camids[s:e],
            g_pids,
            g_camids,
            g_dense,
            len(ids),
            rule,
            max_rank,
            sort_kind,
            tie_perm,
        )
        hits += h
    valid = ~np.isnan(ap)
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError("no valid query: no query has a true match in its gallery")
    cmc = hits.astype(np.float32) / n_valid  # float32 as AGW's eval_* returns it
    return EvalResult(cmc, float(np.mean(ap[valid])), float(np.mean(inp[valid])), n_valid, ap, inp)


def evaluate(
    dist,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    protocol: str = "sysu",
    max_rank: int = 20,
    sort_kind: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> EvalResult:
    """Metrics of a (n_query, n_gallery) distance matrix (smaller = more similar).

    ``protocol`` ∈ {"sysu", "regdb", "llcm", "market"} picks the exclusion rule and CMC
    kind. ``sort_kind=None`` breaks tied distances by a seeded permutation of the gallery
    (no label can leak through the list order; tie-free rows rank as the community code);
    ``"quicksort"`` keeps AGW's ``np.argsort`` order for ties, ``"stable"`` MATLAB's.
    """
    dist = np.asarray(dist) if not isinstance(dist, np.memmap) else dist
    nq, ng = dist.shape
    return evaluate_blocks(
        lambda s, e: dist[s:e],
        nq,
        ng,
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        protocol,
        max_rank,
        sort_kind,
        block_bytes,
    )


def evaluate_features(
    q_feats,
    g_feats,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    protocol: str = "sysu",
    max_rank: int = 20,
    sort_kind: str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> EvalResult:
    """Like ``evaluate`` with ``dist = -(q @ gᵀ)`` in float64 (AGW's convention for
    L2-normalised features), computed block by block so the full matrix never exists."""
    q = np.asarray(q_feats, dtype=np.float64)
    g = np.asarray(g_feats, dtype=np.float64)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1] or q.shape[1] == 0:
        raise ValueError(
            f"feature shapes {q.shape} and {g.shape}: expected (N, D) and (M, D) with D >= 1"
        )
    for name, f in (("query", q), ("gallery", g)):
        bad = non_finite_rows(f)
        if bad.any():
            raise ValueError(
                f"{name} features: {int(bad.sum())} row(s) hold NaN/Inf (first: row "
                f"{int(np.argmax(bad))}); a model or file with non-finite values cannot be scored"
            )
    return evaluate_blocks(
        lambda s, e: -(q[s:e] @ g.T),
        len(q),
        len(g),
        q_pids,
        g_pids,
        q_camids,
        g_camids,
        protocol,
        max_rank,
        sort_kind,
        block_bytes,
    )
