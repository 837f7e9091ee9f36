"""Triplet losses of the VI-ReID baselines, on the pre-BN pooled feature.

* ``batch_hard_triplet``: hardest positive / hardest negative, hinge with a margin
  (Hermans et al., 2017).
* ``weighted_regularized_triplet``: AGW's WRT — softmax-weighted positive and negative
  distances, soft margin, no margin parameter (Ye et al., TPAMI 2021, ``TripletLoss_WRT``).
* ``adp_triplet``: CAJ's enhanced squared-difference triplet (``TripletLoss_ADP``, Ye et al.,
  ICCV 2021): WRT's weighting with a temperature ``alpha``; with ``square`` the soft margin
  acts on ``gamma·(d_ap − d_an)²`` (clamped at 88) with the sign of the violation.

All take ``feats`` (B, D) and ``labels`` (B,) and return a scalar; pairwise distances are
Euclidean with the community's clamp at 1e-12 before the square root.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    sq = x.pow(2).sum(1, keepdim=True)
    return (sq + sq.t() - 2 * x @ x.t()).clamp(min=1e-12).sqrt()


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    return same.float(), (~same).float()


def _softmax_weights(dist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    max_v = (dist * mask).max(dim=1, keepdim=True)[0]
    e = torch.exp(dist - max_v) * mask
    return e / (e.sum(dim=1, keepdim=True) + 1e-6)


def batch_hard_triplet(feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.3):
    d = pairwise_euclidean(feats)
    pos, _ = _masks(labels)
    d_ap = (d * pos).max(1)[0]
    d_an = (d + 1e6 * pos).min(1)[0]  # positives pushed out of the min
    return F.relu(d_ap - d_an + margin).mean()


def _weighted_distances(feats, labels, alpha: float = 1.0):
    d = pairwise_euclidean(feats)
    pos, neg = _masks(labels)
    d_ap, d_an = d * pos, d * neg
    far_pos = (d_ap * _softmax_weights(d_ap * alpha, pos)).sum(1)
    close_neg = (d_an * _softmax_weights(-d_an * alpha, neg)).sum(1)
    return far_pos, close_neg


def weighted_regularized_triplet(feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    far_pos, close_neg = _weighted_distances(feats, labels)
    return F.soft_margin_loss(close_neg - far_pos, torch.ones_like(far_pos))


def adp_triplet(
    feats: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 1.0,
    gamma: float = 1.0,
    square: bool = True,
) -> torch.Tensor:
    far_pos, close_neg = _weighted_distances(feats, labels, alpha)
    if not square:
        return F.soft_margin_loss(gamma * (close_neg - far_pos), torch.ones_like(far_pos))
    diff_pow = (gamma * (far_pos - close_neg).pow(2)).clamp(max=88)
    # target −1 where the positive is farther than the negative (a violation: the loss
    # shrinks the squared gap), +1 where it is closer (the loss widens the gap), as
    # TripletLoss_ADP's y = −(y1 + y2)
    y = -((far_pos > close_neg).float() * 2 - 1)
    return F.soft_margin_loss(diff_pow, y)
