"""MUN's identity alignment (Eq. 12) and modality alignment (Eq. 15) losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .mmd import mmd2


def identity_centres(feats: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor):
    onehot = (labels[None, :] == ids[:, None]).to(feats.dtype)
    return (onehot @ feats) / onehot.sum(1, keepdim=True).clamp_min(1)


def identity_alignment_loss(
    v: torch.Tensor,
    r: torch.Tensor,
    a: torch.Tensor,
    yv: torch.Tensor,
    yr: torch.Tensor,
    ya: torch.Tensor,
    margin: float = 0.55,
    normalize: bool = False,
    reduction: str = "sum",
) -> torch.Tensor:
    """Eq. 12: Σ_i [α + max_m ‖C^a_i − C^m_i‖ − min_{m, q≠i} ‖C^a_i − C^m_q‖]_+ over the
    identities present in all three modalities; m ∈ {visible, infrared}; C the mean
    features (N, D) of an identity. ``normalize``: L2-normalised centres (not in the
    paper). ``reduction="none"``: the hinge of each identity, (P,) (0 where the margin is
    met), so a caller can tell how often the margin is reached."""
    if reduction not in ("sum", "none"):
        raise ValueError(f"reduction {reduction!r}: expected 'sum' or 'none'")
    ids = torch.unique(ya)
    ids = ids[torch.isin(ids, yv) & torch.isin(ids, yr)]
    if len(ids) < 2:  # no negative centre: nothing to align against
        return a.sum() * 0.0 if reduction == "sum" else a[:0, 0] * 0.0
    cs = [identity_centres(x, y, ids) for x, y in ((a, ya), (v, yv), (r, yr))]
    if normalize:
        cs = [F.normalize(c, dim=1) for c in cs]
    ca, cv, cr = cs
    dv, dr = torch.cdist(ca, cv), torch.cdist(ca, cr)  # (P, P): auxiliary i → modality q
    pos = torch.maximum(dv.diagonal(), dr.diagonal())
    off = ~torch.eye(len(ids), dtype=torch.bool, device=a.device)
    big = torch.finfo(dv.dtype).max
    neg = torch.minimum(
        dv.masked_fill(~off, big).min(1).values, dr.masked_fill(~off, big).min(1).values
    )
    hinge = F.relu(margin + pos - neg)
    return hinge.sum() if reduction == "sum" else hinge


def accumulate_prototypes(
    current: torch.Tensor, previous: torch.Tensor | None, beta: float
) -> torch.Tensor:
    """Eq. 14: [T]^i = β·W_p[Z]^i + (1 − β)·[T]^{i−1}, row by row (the paper's prototypes
    are (B, D), one per batch position). ``current`` = W_p[Z]^i; ``previous`` (detached) is
    ignored when absent or of another shape (the first iteration, Eq. 13, or a batch of
    another size)."""
    if previous is None or previous.shape != current.shape:
        return current
    return beta * current + (1.0 - beta) * previous.detach()


def modality_alignment_loss(
    tv: torch.Tensor,
    tr: torch.Tensor,
    ta: torch.Tensor,
    yv: torch.Tensor,
    yr: torch.Tensor,
    ya: torch.Tensor,
) -> torch.Tensor:
    """(1/P) Σ_p [MMD²(T^v_p, T^a_p) + MMD²(T^a_p, T^r_p)] over the identities present in
    all three prototype sets (Gaussian kernels as MMM's ``mmd2``)."""
    terms = []
    for p in torch.unique(ya):
        v, r, a = tv[yv == p], tr[yr == p], ta[ya == p]
        if len(v) and len(r) and len(a):
            terms.append(mmd2(v, a) + mmd2(a, r))
    if not terms:
        return ta.sum() * 0.0
    return torch.stack(terms).mean()


def direct_modality_alignment_loss(
    tv: torch.Tensor, tr: torch.Tensor, yv: torch.Tensor, yr: torch.Tensor
) -> torch.Tensor:
    """Eq. 15 without the auxiliary bridge (Table 3's ablation): (1/P) Σ_p MMD²(T^v_p, T^r_p)
    over the identities present in both prototype sets."""
    terms = [mmd2(tv[yv == p], tr[yr == p]) for p in torch.unique(yr) if bool((yv == p).any())]
    if not terms:
        return tv.sum() * 0.0
    return torch.stack(terms).mean()
