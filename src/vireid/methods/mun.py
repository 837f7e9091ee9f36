"""MUN: Modality Unifying Network (Yu et al., ICCV 2023). No public code; the paper's
equations are followed and every gap is a config key (docs/methods/mun.md).

Per batch of P identities × (K visible + K infrared) in matching order (AGW's sampler):
the modality-specific part of the network (``model.modality_specific``: the MUN recipes
use stem + layer1, "the first stage … as two independent ResBlocks") gives F^v, F^r; the
auxiliary generator turns each visible/infrared pair of the same identity into an
auxiliary map F^a; all three go through the shared residual stages and GeM (Z). Losses
(Eq. 17): L_id (visible and infrared classifiers on their own modality's Z, Eq. 10) +
hard-mining triplet (visible + infrared) + γ·L_idc (both classifiers on Z^a, Eq. 11) +
θ·L_ia (identity centre alignment, Eq. 12) + σ·L_ma (MMD between per-identity modality
prototypes, Eq. 15). The prototypes follow Eqs. 13–14: T^m = β·W_p^m Z^m + (1 − β)·T^m of
the previous iteration (detached, carried across steps and checkpoints), β rising
linearly per epoch from ``ma_beta_start`` to ``ma_beta_end``. The auxiliary branch is
training-only: evaluation embeds through ``model.embed``, which never sees the generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import batch_hard_triplet
from ..losses.alignment import (
    accumulate_prototypes,
    identity_alignment_loss,
    modality_alignment_loss,
)
from ..models.auxiliary import AuxiliaryGenerator
from ..registry import METHODS
from .base import Method

VIS, IR = 0, 1


class MUN(Method):
    name = "mun"

    def __init__(self, model, num_classes: int, cfg) -> None:
        super().__init__(model)
        self.cfg = cfg
        self.generator = AuxiliaryGenerator(
            model.stem_channels,
            tuple(cfg.pyramid_ratios),
            cfg.layer_scale_init,
            cfg.upsample,
            cfg.residual,
        )
        dim = model.feat_dim
        self.classifiers = nn.ModuleList(nn.Linear(dim, num_classes, bias=False) for _ in "vr")
        for c in self.classifiers:
            nn.init.normal_(c.weight, std=0.001)
        # W_p^m (visible, infrared, auxiliary), identity-initialised: prototypes start as
        # the features themselves
        self.prototypes = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in "vra")
        for p in self.prototypes:
            nn.init.eye_(p.weight)
            p.requires_grad_(cfg.ma_weight > 0)  # unused weights would stall DDP
        # Eq. 14's [T^m]^{i-1}: the previous iteration's prototypes (detached)
        self.last_prototypes: dict[str, torch.Tensor] = {}
        model.classifier.requires_grad_(False)  # MUN classifies per modality instead
        if cfg.classifier_feature == "pool":  # no loss reads the BNNeck: it only normalises
            model.bottleneck.weight.requires_grad_(False)  # the evaluation feature

    def beta(self) -> float:
        """Eq. 14's updating ratio at this epoch: linear from ``ma_beta_start`` (first
        epoch) to ``ma_beta_end`` (last epoch)."""
        c, n = self.cfg, self.num_epochs
        t = 1.0 if not n or n <= 1 else min(self.epoch / (n - 1), 1.0)
        return c.ma_beta_start + (c.ma_beta_end - c.ma_beta_start) * t

    def prototypes_step(self, z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eqs. 13–14 for the three modalities; remembers the result for the next step."""
        beta = self.beta()
        out = {}
        for k, w in zip("vra", self.prototypes, strict=True):
            prev = self.last_prototypes.get(k)
            out[k] = accumulate_prototypes(w(z[k]), prev, beta)
            self.last_prototypes[k] = out[k].detach()
        return out

    def extra_state(self) -> dict:
        return {f"prototypes_{k}": t.cpu() for k, t in self.last_prototypes.items()}

    def load_extra_state(self, state: dict) -> None:
        device = self.prototypes[0].weight.device
        self.last_prototypes = {
            k[len("prototypes_") :]: t.to(device)
            for k, t in state.items()
            if k.startswith("prototypes_")
        }

    def _pairs(self, labels: torch.Tensor, modality: torch.Tensor):
        """Visible/infrared row indices paired by position (same identity)."""
        vis = torch.nonzero(modality == VIS).squeeze(1)
        ir = torch.nonzero(modality == IR).squeeze(1)
        k = len(ir)
        if k == 0 or len(vis) < k or not torch.equal(labels[vis[:k]], labels[ir]):
            raise ValueError(
                "mun needs batches of P identities × (K visible + K infrared) with the same "
                "identity order in both blocks (the supervised cross-modality sampler)"
            )
        return vis[:k], ir

    def _global_rows(self, pool, feat, batch, n: int):
        """``Method.global_batch`` for MUN's rows: the n image rows in the single-process
        batch order, then the auxiliary rows (one per infrared row, in the infrared rows'
        order, which is rank-major)."""
        from ..engine.distributed import batch_is_global, gather_rows, global_batch_order

        y, mod = batch["labels"], batch["modality"]
        if not batch_is_global():
            return pool, feat, y, mod, n
        order = global_batch_order(mod * 2 + batch["view"])

        def rows(t: torch.Tensor) -> torch.Tensor:
            head = gather_rows(t[:n])[order]
            return torch.cat([head, gather_rows(t[n:])]) if len(t) > n else head

        return rows(pool), rows(feat), gather_rows(y)[order], gather_rows(mod)[order], len(order)

    def training_step(self, batch):
        c, m = self.cfg, self.model
        x, y, mod = batch["images"], batch["labels"], batch["modality"]
        f0 = m.stem_forward(x, mod)
        pv, pr = self._pairs(y, mod)
        fa = self.generator(f0[pv], f0[pr])
        pool = m.pool(m.backbone(torch.cat([f0, fa])))
        n = len(x)
        # The BNNeck's running statistics normalise the evaluation feature, which only
        # visible and infrared images reach: when no loss reads the BN feature of the
        # auxiliary rows (bare linear classifiers on Z), they stay out of those statistics.
        feat = m.bottleneck(pool[:n] if c.classifier_feature == "pool" else pool).float()
        pool = pool.float()
        pool, feat, y, mod, n = self._global_rows(pool, feat, batch, n)  # DDP: every rank's
        vis, ir = mod == VIS, mod == IR
        ya = y[ir]  # the auxiliary rows follow the infrared rows (``pr``)
        z = {"v": pool[:n][vis], "r": pool[:n][ir], "a": pool[n:]}
        cls_in = pool if c.classifier_feature == "pool" else feat
        fv, fr, fa_feat = cls_in[:n][vis], cls_in[:n][ir], cls_in[n:]
        cv, cr = self.classifiers
        ls = c.label_smoothing
        lid = F.cross_entropy(cv(fv), y[vis], label_smoothing=ls) + F.cross_entropy(
            cr(fr), y[ir], label_smoothing=ls
        )
        tri = batch_hard_triplet(pool[:n], y, c.triplet_margin)
        loss = lid + tri
        parts = {"id": lid.detach(), "triplet": tri.detach()}
        if c.idc_weight > 0:
            idc = F.cross_entropy(cv(fa_feat), ya, label_smoothing=ls) + F.cross_entropy(
                cr(fa_feat), ya, label_smoothing=ls
            )
            loss = loss + c.idc_weight * idc
            parts["idc"] = idc.detach()
        if c.ia_weight > 0:
            ia = identity_alignment_loss(
                z["v"], z["r"], z["a"], y[vis], y[ir], ya, c.ia_margin, c.ia_normalize
            )
            loss = loss + c.ia_weight * ia
            parts["ia"] = ia.detach()
        if c.ma_weight > 0:
            t = self.prototypes_step(z)
            ma = modality_alignment_loss(t["v"], t["r"], t["a"], y[vis], y[ir], ya)
            loss = loss + c.ma_weight * ma
            parts["ma"] = ma.detach()
        with torch.no_grad():
            hits = torch.cat([cv(fv).argmax(1) == y[vis], cr(fr).argmax(1) == y[ir]])
            parts["acc"] = hits.float().mean()
        return {"loss": loss, **parts}


@METHODS.register("mun")
def build_mun(cfg, model) -> MUN:
    if model.classifier is None:
        raise ValueError("mun is supervised: the model needs the training identities")
    return MUN(model, model.classifier.out_features, cfg)
