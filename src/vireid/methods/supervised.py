"""Supervised baselines: AGW (Ye et al., TPAMI 2021) and CAJ (Ye et al., ICCV 2021).

Both: identity cross-entropy on the BN feature's logits + a triplet loss on the pre-BN
pooled feature. AGW uses the weighted regularised triplet; CAJ the enhanced
squared-difference triplet and channel-augmented batches (a channel-exchanged second
visible view; configured in ``data.augment``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import adp_triplet, batch_hard_triplet, weighted_regularized_triplet
from ..registry import METHODS
from .base import Method


class AGW(Method):
    name = "agw"
    # AGW train.py / CAJ train_ext.py give the full rate only to the BNNeck and the
    # classifier: the non-local blocks train at the backbone's (lr x 0.1)
    backbone_prefixes = ("stems.", "layers.", "non_local.")

    def __init__(
        self,
        model,
        label_smoothing: float = 0.0,
        triplet: str = "wrt",
        margin: float = 0.3,
        triplet_weight: float = 1.0,
    ) -> None:
        super().__init__(model)
        self.label_smoothing, self.triplet = label_smoothing, triplet
        self.margin, self.triplet_weight = margin, triplet_weight

    def triplet_loss(self, pool: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.triplet == "wrt":
            return weighted_regularized_triplet(pool, labels)
        return batch_hard_triplet(pool, labels, self.margin)

    def training_step(self, batch):
        out = self.model(batch["images"], batch["modality"])
        out, batch = self.global_batch(out, batch)  # DDP: every rank's rows
        labels = batch["labels"]
        ce = F.cross_entropy(out["logits"].float(), labels, label_smoothing=self.label_smoothing)
        acc = (out["logits"].argmax(1) == labels).float().mean()
        parts = {"loss": ce, "ce": ce.detach(), "acc": acc}
        if self.triplet_weight > 0:
            tri = self.triplet_loss(out["pool"].float(), labels)
            parts["loss"] = ce + self.triplet_weight * tri
            parts["triplet"] = tri.detach()
        return parts


class CAJ(AGW):
    name = "caj"

    def __init__(
        self,
        model,
        label_smoothing: float = 0.0,
        alpha: float = 1.0,
        gamma: float = 1.0,
        square: bool = True,
        triplet_weight: float = 1.0,
    ) -> None:
        super().__init__(model, label_smoothing, "adp", 0.0, triplet_weight)
        self.alpha, self.gamma, self.square = alpha, gamma, square

    def triplet_loss(self, pool, labels):
        return adp_triplet(pool, labels, self.alpha, self.gamma, self.square)


@METHODS.register("agw")
def build_agw(cfg, model) -> AGW:
    return AGW(model, cfg.label_smoothing, cfg.triplet, cfg.margin, cfg.triplet_weight)


@METHODS.register("caj")
def build_caj(cfg, model) -> CAJ:
    return CAJ(model, cfg.label_smoothing, cfg.alpha, cfg.gamma, cfg.square, cfg.triplet_weight)
