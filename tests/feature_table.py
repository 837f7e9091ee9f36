"""A stand-in network for method-level tests: the "images" of a batch are row numbers and
image i's feature is row i of a table the test sets, so a training step sees exactly the
features the test chose (and their gradients land on the table)."""

from __future__ import annotations

import torch
from torch import nn


class FeatureTable(nn.Module):
    """``forward(images, modality)``: ``pool`` = ``feat`` = ``table[images]`` (no BNNeck),
    ``logits`` from a bias-free classifier when ``num_classes`` > 0."""

    def __init__(self, feats: torch.Tensor, num_classes: int = 0) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.as_tensor(feats, dtype=torch.float32).clone())
        self.classifier = (
            nn.Linear(self.table.shape[1], num_classes, bias=False) if num_classes else None
        )

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.table[images]
        out = {"pool": f, "feat": f}
        if self.classifier is not None:
            out["logits"] = self.classifier(f)
        return out
