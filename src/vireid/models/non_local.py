"""AGW's non-local block (Wang et al., CVPR 2018, as in mangye16/Cross-Modal-Re-ID-baseline
``model.py``), with the community's quirks kept on purpose: ``inter_channels`` is
``reduc_ratio // reduc_ratio`` = 1, attention is f / N (no softmax), and the output BN is
zero-initialised so each block starts as the identity."""

from __future__ import annotations

import torch
from torch import nn


class NonLocal(nn.Module):
    def __init__(self, in_channels: int, inter_channels: int = 1) -> None:
        super().__init__()
        self.g = nn.Conv2d(in_channels, inter_channels, 1)
        self.theta = nn.Conv2d(in_channels, inter_channels, 1)
        self.phi = nn.Conv2d(in_channels, inter_channels, 1)
        self.W = nn.Sequential(
            nn.Conv2d(inter_channels, in_channels, 1), nn.BatchNorm2d(in_channels)
        )
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        phi = self.phi(x).flatten(2)  # (B, C', HW)
        f = theta @ phi / (h * w)  # (B, HW, HW)
        y = (f @ g).transpose(1, 2).reshape(b, -1, h, w)
        return self.W(y) + x
