"""Cosine-proxy cross-entropy, the building block of MAUM's modality-specific proxies and
unidirectional metrics: logits = cos(feature, proxy) / temperature."""

from __future__ import annotations

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
    feats: torch.Tensor, labels: torch.Tensor, references: list[torch.Tensor], temp: float
) -> torch.Tensor:
    """MAUM's unidirectional metric: ``feats`` of one modality pulled towards the *other*
    modality's proxies used as static references (no gradient reaches them), averaged over
    the reference sets (the current proxies and the memory bank's older copies)."""
    losses = [proxy_ce(feats, labels, ref.detach(), temp) for ref in references]
    return torch.stack(losses).mean()
