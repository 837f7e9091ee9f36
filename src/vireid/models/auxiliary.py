"""MUN's auxiliary generator (Yu et al., ICCV 2023, §3.1): two intra-modality learners
(IML) and one cross-modality learner (CML) turn a visible and an infrared stem feature map
of the same identity into an auxiliary-modality feature map of the same shape.

By default the generator is Eqs. 5 and 9 as printed: F̂^m = I_scale·IML(F^m) and
F^a = C_scale·P(BN(Ŝ)) from the two IML outputs, with no copy of the stem maps. The layer
scales are per channel, initialised at ``layer_scale_init`` (1 by default) and kept in the
paper's (0, 1] (clamped in value to [1e-6, 1], straight-through in gradient).

``residual=True`` is the ConvNeXt-style reading kept as an option: each IML refines its
input (F̂ = F + I_scale·IML(F)) and F^a = ½(F̂_v + F̂_r) + C_scale·CML(F̂_v, F̂_r); with
ConvNeXt's 1e-6 init it starts as the average of the two stem maps (docs/methods/mun.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SCALE_FLOOR = 1e-6  # the paper's scales lie in (0, 1]: never exactly 0


class LayerScale(nn.Module):
    def __init__(self, channels: int, init: float) -> None:
        super().__init__()
        if not 0 < init <= 1:
            raise ValueError(f"layer scale init {init}: the paper's scales lie in (0, 1]")
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), init))

    def value(self) -> torch.Tensor:
        """The scale used, (C, 1, 1): clamped in value, straight-through in gradient, so a
        scale pushed past a bound keeps receiving gradient."""
        return self.gamma + (self.gamma.clamp(SCALE_FLOOR, 1) - self.gamma).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value() * x


def _depthwise(channels: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)


class IntraModalityLearner(nn.Module):
    """Eqs. 1–5: 5×5 and 7×7 depth-wise convolutions on the two channel halves, a point-wise
    expansion to 4C, a residual 3×3 depth-wise convolution, a point-wise reduction to C."""

    def __init__(self, channels: int, layer_scale_init: float, expansion: int = 4) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"IML splits channels in halves; got {channels} channels")
        half, wide = channels // 2, channels * expansion
        self.dw5, self.dw7 = _depthwise(half, 5), _depthwise(half, 7)
        self.bn1, self.pw1 = nn.BatchNorm2d(channels), nn.Conv2d(channels, wide, 1)
        self.dw3 = _depthwise(wide, 3)
        self.bn2, self.pw2 = nn.BatchNorm2d(wide), nn.Conv2d(wide, channels, 1)
        self.scale = LayerScale(channels, layer_scale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2 = x.chunk(2, dim=1)
        r = torch.cat([self.dw5(c1), self.dw7(c2)], dim=1)
        r1 = self.pw1(self.bn1(r))
        r2 = self.dw3(F.relu(r1)) + r1
        return self.scale(self.pw2(self.bn2(r2)))


class CrossModalityLearner(nn.Module):
    """Eqs. 6–9: average pooling at each ratio, a transposed convolution per ratio (shared
    by both modalities) back to H × W, concatenation of all 2n maps, BN, point-wise fusion."""

    def __init__(
        self, channels: int, ratios: tuple[int, ...], layer_scale_init: float, upsample: str
    ) -> None:
        super().__init__()
        if upsample not in ("transposed", "bilinear"):
            raise ValueError(f"upsample {upsample!r}: expected 'transposed' or 'bilinear'")
        self.ratios, self.upsample = tuple(ratios), upsample
        # bilinear mode has no transposed convolutions at all: parameters that never get a
        # gradient would make DDP wait for them forever
        ups = [nn.ConvTranspose2d(channels, channels, r, stride=r) for r in self.ratios]
        self.up = nn.ModuleList(ups if upsample == "transposed" else [])
        n = 2 * len(self.ratios)
        self.bn, self.pw = nn.BatchNorm2d(n * channels), nn.Conv2d(n * channels, channels, 1)
        self.scale = LayerScale(channels, layer_scale_init)

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        size = x.shape[-2:]
        out = []
        for i, r in enumerate(self.ratios):
            s = F.avg_pool2d(x, r, stride=r, ceil_mode=True)
            s = self.up[i](s) if self.upsample == "transposed" else s
            if s.shape[-2:] != size:  # ratios that do not divide H or W, or bilinear mode
                s = F.interpolate(s, size=size, mode="bilinear", align_corners=False)
            out.append(s)
        return out

    def forward(self, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        s = torch.cat([*self._pyramid(v), *self._pyramid(r)], dim=1)
        return self.scale(self.pw(self.bn(s)))


class AuxiliaryGenerator(nn.Module):
    def __init__(
        self,
        channels: int,
        ratios: tuple[int, ...] = (2, 4, 6, 12),
        layer_scale_init: float = 1.0,
        upsample: str = "transposed",
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.iml_v = IntraModalityLearner(channels, layer_scale_init)
        self.iml_r = IntraModalityLearner(channels, layer_scale_init)
        self.cml = CrossModalityLearner(channels, ratios, layer_scale_init, upsample)
        self.residual = residual

    def forward(self, fv: torch.Tensor, fr: torch.Tensor) -> torch.Tensor:
        """Auxiliary maps (B, C, H, W) for paired visible/infrared maps ``fv``, ``fr``
        (B, C, H, W) of the same identities."""
        hv, hr = self.iml_v(fv), self.iml_r(fr)
        if self.residual:
            hv, hr = fv + hv, fr + hr
            return 0.5 * (hv + hr) + self.cml(hv, hr)
        return self.cml(hv, hr)
