"""Cosine-proxy cross-entropy, the building block of MAUM's modality-specific proxies and
unidirectional metrics: logits = cos(feature, proxy) / temperature."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def proxy_ce(
    feats: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor, temp: float
) -> torch.Tensor:
    """Mean CE of ``feats`` (B, D) against class ``proxies`` (C, D), both L2-normalised
    here; 0 for an empty batch (a batch may hold no image of one modality)."""
    if len(feats) == 0:
        return feats.sum() * 0.0
    logits = F.normalize(feats, dim=1) @ F.normalize(proxies, dim=1).T / temp
    return F.cross_entropy(logits, labels)


def unidirectional_ce(
    feats: torch.Tensor,
    labels: torch.Tensor,
    references: list[torch.Tensor],
    temp: float,
    reduce: Literal["mean", "hard", "joint"] = "mean",
) -> torch.Tensor:
    """MAUM's unidirectional metric: ``feats`` (B, D) of one modality against the other
    modality's reference proxy sets (each (C, D): the current proxies and stored copies).
    The references are used as given; MAUM passes them detached (static references).

    ``mean``: the CE averaged over the sets (each set its own softmax).
    ``hard``: one CE whose logit for the true identity is its *least* similar copy and
    for every other identity its *most* similar copy, so the stored copy that is hardest
    for this feature decides (hard positive and hard negative references).
    ``joint``: one softmax over every copy of every identity (S·C logits), the identity's S
    copies all positives (multi-positive log-sum-exp): a copy far from the feature turns the
    gradient instead of being averaged away; with S equal sets it is the plain CE."""
    if reduce == "mean" or len(feats) == 0:
        return torch.stack([proxy_ce(feats, labels, ref, temp) for ref in references]).mean()
    f = F.normalize(feats, dim=1)
    sims = torch.stack([f @ F.normalize(ref, dim=1).T for ref in references])  # (S, B, C)
    if reduce == "joint":
        z = sims.permute(1, 0, 2).flatten(1) / temp  # (B, S·C)
        pos = sims[:, torch.arange(len(labels)), labels].T / temp  # (B, S)
        return (torch.logsumexp(z, 1) - torch.logsumexp(pos, 1)).mean()
    positive = F.one_hot(labels, sims.shape[-1]).bool()
    hardest = torch.where(positive, sims.amin(0), sims.amax(0))
    return F.cross_entropy(hardest / temp, labels)
