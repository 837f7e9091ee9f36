"""Generalised-mean pooling (Radenović et al., TPAMI 2018)."""

from __future__ import annotations

import torch
from torch import nn


class GeM(nn.Module):
    """(N, C, H, W) → (N, C): (mean(x^p) + eps)^(1/p).

    ``learnable=False`` is the AGW-family pooling (fixed p = 3, eps 1e-12, no clamp);
    ``learnable=True`` is Cluster-Contrast's ``GeneralizedMeanPoolingP`` (p a parameter
    initialised at 3, inputs clamped at eps = 1e-6).
    """

    def __init__(self, p: float = 3.0, learnable: bool = False) -> None:
        super().__init__()
        self.learnable = learnable
        if learnable:
            self.p = nn.Parameter(torch.tensor(float(p)))
        else:
            self.register_buffer("p", torch.tensor(float(p)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        eps = 0.0
        if self.learnable:
            x = x.clamp(min=1e-6)
        else:
            eps = 1e-12
        # The same value computed as m * (mean((x/m)^p) + eps/m^p)^(1/p), m the per-channel
        # max: x^p overflows float32 past x ~ 7e12 (float16 past 40), which a random init
        # under eval-mode BatchNorm reaches; x/m <= 1 cannot overflow.
        m = x.detach().amax(-1, keepdim=True).clamp(min=1e-6)
        inner = (x / m).pow(self.p).mean(-1)
        if eps:
            inner = inner + eps / m.squeeze(-1).pow(self.p)
        return m.squeeze(-1) * inner.pow(1.0 / self.p)


def build_pooling(kind: str, p: float = 3.0) -> nn.Module:
    if kind == "gem":
        return GeM(p, learnable=False)
    if kind == "gem_learnable":
        return GeM(p, learnable=True)
    if kind == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if kind == "max":
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
    raise ValueError(f"pooling {kind!r}: expected gem, gem_learnable, avg or max")
