"""The community's two-stream ResNet for VI-ReID (AGW; yangbincv/ADCA ``agw.py``).

A modality-specific stem (conv1, bn1, relu, maxpool) per modality, shared layer1–4 with
last stride 1 (``specific_stages=1``: layer1 is modality-specific too, MUN's reading of
"the first stage … as two independent ResBlocks"), optional non-local blocks
(``[0, 2, 3, 0]``: after the last two blocks of layer2 and the last three of layer3),
GeM pooling, a BNNeck (BatchNorm1d with frozen bias) and a bias-free linear classifier on
the BN feature.

``forward(images, modality)`` routes each sample by its modality (0 visible, 1 infrared),
so mixed batches in any order work. Outputs a dict: ``pool`` (pre-BN, for triplet losses),
``feat`` (BN feature), ``logits`` (when a classifier exists).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from ..registry import MODELS
from .non_local import NonLocal
from .pooling import build_pooling

ARCHS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}
RESNET_LAYERS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3]}
NON_LOCAL_LAYERS = (0, 2, 3, 0)


def _scaled_resnet(arch: str, width: float) -> nn.Module:
    """torchvision's ResNet (width 1, so ImageNet weights load), or a narrow copy of the
    same topology for CPU demos and tests."""
    if width == 1.0:
        return ARCHS[arch](weights=None)
    block = Bottleneck if arch == "resnet50" else BasicBlock
    return _NarrowResNet(block, RESNET_LAYERS[arch], width)


class _NarrowResNet(ResNet):
    def __init__(self, block, layers: list[int], width: float) -> None:
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = max(8, int(64 * width))
        self.dilation, self.groups, self.base_width = 1, 1, 64
        self.conv1 = nn.Conv2d(3, self.inplanes, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = [max(8, int(c * width)) for c in (64, 128, 256, 512)]
        self.layer1 = self._make_layer(block, chans[0], layers[0])
        self.layer2 = self._make_layer(block, chans[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, chans[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, chans[3], layers[3], stride=2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class TwoStreamNet(nn.Module):
    def __init__(
        self,
        arch: str = "resnet50",
        num_classes: int = 0,
        last_stride: int = 1,
        non_local: bool = True,
        pooling: str = "gem",
        gem_p: float = 3.0,
        width: float = 1.0,
        specific_stages: int = 0,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch {arch!r}: expected one of {sorted(ARCHS)}")
        if specific_stages not in (0, 1):
            raise ValueError(f"specific_stages={specific_stages}: expected 0 or 1")
        base = _scaled_resnet(arch, width)
        if last_stride == 1:
            blk = base.layer4[0]
            conv = blk.conv2 if hasattr(blk, "conv3") else blk.conv1
            conv.stride = (1, 1)
            if blk.downsample is not None:
                blk.downsample[0].stride = (1, 1)
        layers = [base.layer1, base.layer2, base.layer3, base.layer4]
        specific = layers[:specific_stages]
        stem = nn.Sequential(base.conv1, base.bn1, base.relu, base.maxpool, *specific)
        self.stems = nn.ModuleList([stem, copy.deepcopy(stem)])  # visible, infrared
        # channels of the modality-specific maps (MUN's generator works on them)
        self.stem_channels = _out_channels(specific[-1]) if specific else base.conv1.out_channels
        self.layers = nn.ModuleList(layers[specific_stages:])
        self.non_local = nn.ModuleList()
        self.nl_index: list[list[int]] = []
        nl_counts = NON_LOCAL_LAYERS[specific_stages:]
        for layer, count in zip(self.layers, nl_counts, strict=True):
            n = count if non_local else 0
            idx = list(range(len(layer) - n, len(layer)))
            self.nl_index.append(idx)
            ch = _out_channels(layer)
            self.non_local.append(nn.ModuleList([NonLocal(ch) for _ in idx]))
        self.feat_dim = _out_channels(base.layer4)
        self.pool = build_pooling(pooling, gem_p)
        self.bottleneck = nn.BatchNorm1d(self.feat_dim)
        self.bottleneck.bias.requires_grad_(False)  # BNNeck: frozen bias
        nn.init.constant_(self.bottleneck.weight, 1.0)
        nn.init.constant_(self.bottleneck.bias, 0.0)
        self.classifier = nn.Linear(self.feat_dim, num_classes, bias=False) if num_classes else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def stem_forward(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        ir = modality.bool()
        if ir.all():
            return self.stems[1](images)
        if not ir.any():
            return self.stems[0](images)
        # Mixed batch: run each stem on its own samples, scatter back in batch order.
        v = self.stems[0](images[~ir])
        out = v.new_empty((images.shape[0], *v.shape[1:]))
        out[~ir] = v
        out[ir] = self.stems[1](images[ir])
        return out

    def stem_select(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """Both stems on every image, each sample's own kept: no data-dependent branch, so
        the graph exports (ONNX) with any mix of modalities, at twice the stem's cost."""
        ir = (modality == 1).view(-1, 1, 1, 1)
        return torch.where(ir, self.stems[1](images), self.stems[0](images))

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        for layer, nls, idx in zip(self.layers, self.non_local, self.nl_index, strict=True):
            for i, block in enumerate(layer):
                x = block(x)
                if i in idx:
                    x = nls[idx.index(i)](x)
        return x

    def forward(
        self, images: torch.Tensor, modality: torch.Tensor, static: bool = False
    ) -> dict[str, torch.Tensor]:
        """``static``: route through ``stem_select`` (for export) instead of per-modality
        sub-batches; the features agree to float rounding."""
        stem = self.stem_select if static else self.stem_forward
        x = self.backbone(stem(images, modality))
        pool = self.pool(x)
        feat = self.bottleneck(pool)
        out = {"pool": pool, "feat": feat}
        if self.classifier is not None and self.training:
            out["logits"] = self.classifier(feat)
        return out

    @torch.no_grad()
    def embed(self, images: torch.Tensor, modality: torch.Tensor, which: str = "feat"):
        """Evaluation feature: L2-normalised BN feature (``which="pool"``: pre-BN)."""
        return F.normalize(self.forward(images, modality)[which], dim=1)


def _out_channels(layer: nn.Sequential) -> int:
    last = layer[-1]
    return (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features


@MODELS.register("two_stream")
def build_two_stream(cfg, num_classes: int = 0) -> TwoStreamNet:
    from .weights import load_pretrained

    stages = {"stem": 0, "layer1": 1}[cfg.modality_specific]
    net = TwoStreamNet(
        cfg.arch,
        num_classes,
        cfg.last_stride,
        cfg.non_local,
        cfg.pooling,
        cfg.gem_p,
        cfg.width,
        stages,
    )
    if cfg.pretrained is not None:
        load_pretrained(net, cfg.pretrained, cfg.arch, cfg.width, stages)
    return net
