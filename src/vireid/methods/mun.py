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

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import batch_hard_triplet
from ..losses.alignment import (
    accumulate_prototypes,
    direct_modality_alignment_loss,
    identity_alignment_loss,
    modality_alignment_loss,
)
from ..models.auxiliary import AuxiliaryGenerator
from ..registry import METHODS
from .base import Method

VIS, IR = 0, 1


class Rows(NamedTuple):
    """One step's rows per modality ("v": visible first views, then the channel-exchanged
    second views when present; "r": infrared; "a": auxiliary, absent without it)."""

    z: dict[str, torch.Tensor]  # GeM-pooled features Z (N_m, D)
    cls: dict[str, torch.Tensor]  # what the classifiers read: the BN feature or Z
    bn: dict[str, torch.Tensor]  # BNNeck features (the auxiliary rows only with `feat`)
    y: dict[str, torch.Tensor]  # labels


class MUN(Method):
    name = "mun"
    # logged per epoch, not loss terms: the hinge's active fraction (is α ever met?) and
    # the learnable scales and prototype matrices (do they move from their init?); the
    # "_spread" and "_off" values are 0 under weight decay alone (see ``monitor``)
    diagnostics = (
        "acc",
        "ia_active",
        *(f"{s}{x}" for s in ("iscale_v", "iscale_r", "cscale") for x in ("", "_spread")),
        *(f"wp_{k}{x}" for k in "vra" for x in ("", "_off")),
    )

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
        # without the auxiliary modality the generator never runs: frozen, so neither the
        # optimiser (weight decay) nor DDP's reducer waits for it
        self.generator.requires_grad_(cfg.auxiliary)
        dim = model.feat_dim
        self.classifiers = nn.ModuleList(nn.Linear(dim, num_classes, bias=False) for _ in "vr")
        for c in self.classifiers:
            nn.init.normal_(c.weight, std=0.001)
        # L_id^a's own classifier (Table 1's "+Aux" row), only where that loss is on
        self.aux_classifier = None
        if cfg.ida_weight > 0:
            self.aux_classifier = nn.Linear(dim, num_classes, bias=False)
            nn.init.normal_(self.aux_classifier.weight, std=0.001)
        # W_p^m (visible, infrared, auxiliary), identity-initialised: prototypes start as
        # the features themselves
        self.prototypes = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in "vra")
        for k, p in zip("vra", self.prototypes, strict=True):
            nn.init.eye_(p.weight)
            p.requires_grad_(k in self._prototype_keys())  # unused weights would stall DDP
        # Eq. 14's [T^m]^{i-1}: the previous iteration's prototypes (detached)
        self.last_prototypes: dict[str, torch.Tensor] = {}
        model.classifier.requires_grad_(False)  # MUN classifies per modality instead
        if cfg.classifier_feature == "pool":  # no loss reads the BNNeck: it only normalises
            model.bottleneck.weight.requires_grad_(False)  # the evaluation feature

    def _prototype_keys(self) -> str:
        """Modalities whose W_p enters L_ma."""
        c = self.cfg
        if c.ma_weight <= 0 or not c.ma_prototypes:
            return ""
        return "vra" if c.ma_bridge else "vr"

    def beta(self) -> float:
        """Eq. 14's updating ratio at this epoch: linear from ``ma_beta_start`` (first
        epoch) to ``ma_beta_end`` (last epoch)."""
        c, n = self.cfg, self.num_epochs
        t = 1.0 if not n or n <= 1 else min(self.epoch / (n - 1), 1.0)
        return c.ma_beta_start + (c.ma_beta_end - c.ma_beta_start) * t

    def prototypes_step(self, z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eqs. 13–14 for the modalities in ``z``; remembers the result for the next step."""
        beta = self.beta()
        out = {}
        for k, w in zip("vra", self.prototypes, strict=True):
            if k not in z:
                continue
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
        """Visible/infrared row indices paired by position (same identity); the visible
        rows are the first views (the channel-exchanged second views follow them)."""
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

    def forward_rows(self, batch) -> Rows:
        """Stems, the auxiliary generator on the paired stem maps (when on), the shared
        stages, GeM and the BNNeck."""
        c, m = self.cfg, self.model
        x, y, mod = batch["images"], batch["labels"], batch["modality"]
        maps = m.stem_forward(x, mod)
        n = len(x)
        if c.auxiliary:
            pv, pr = self._pairs(y, mod)
            maps = torch.cat([maps, self.generator(maps[pv], maps[pr])])
        pool = m.pool(m.backbone(maps))
        # The BNNeck's running statistics normalise the evaluation feature, which only
        # visible and infrared images reach: when no loss reads the BN feature of the
        # auxiliary rows (bare linear classifiers on Z), they stay out of those statistics.
        feat = m.bottleneck(pool[:n] if c.classifier_feature == "pool" else pool).float()
        pool = pool.float()
        pool, feat, y, mod, n = self._global_rows(pool, feat, batch, n)  # DDP: every rank's
        vis, ir = mod == VIS, mod == IR
        # the auxiliary rows follow the infrared rows (``pr``: every infrared row in order)
        ya = y[ir] if c.auxiliary else y[:0]

        def split(t):
            out = {"v": t[:n][vis], "r": t[:n][ir]}
            if c.auxiliary and len(t) > n:
                out["a"] = t[n:]
            return out

        z, bn = split(pool), split(feat)
        return Rows(
            z, bn if c.classifier_feature == "feat" else z, bn, {"v": y[vis], "r": y[ir], "a": ya}
        )

    def identity_loss(self, rows: Rows) -> torch.Tensor:
        """Eq. 10: L_id^v + L_id^r, each modality's classifier on its own rows."""
        ls = self.cfg.label_smoothing
        return sum(
            F.cross_entropy(cls(rows.cls[k]), rows.y[k], label_smoothing=ls)
            for k, cls in zip("vr", self.classifiers, strict=True)
        )

    def identity_consistency_loss(self, rows: Rows) -> torch.Tensor:
        """Eq. 11: both modality classifiers on the auxiliary rows."""
        ls = self.cfg.label_smoothing
        return sum(
            F.cross_entropy(cls(rows.cls["a"]), rows.y["a"], label_smoothing=ls)
            for cls in self.classifiers
        )

    def triplet_loss(self, rows: Rows) -> torch.Tensor:
        """Hard-mining triplet on the pooled visible and infrared rows (no auxiliary)."""
        feats = torch.cat([rows.z["v"], rows.z["r"]])
        return batch_hard_triplet(
            feats, torch.cat([rows.y["v"], rows.y["r"]]), self.cfg.triplet_margin
        )

    def identity_alignment(self, rows: Rows) -> torch.Tensor:
        """Eq. 12's per-identity hinges, (P,), on the centres of ``ia_feature``."""
        c = self.cfg
        f = rows.bn if c.ia_feature == "feat" else rows.z
        y = rows.y
        return identity_alignment_loss(
            f["v"],
            f["r"],
            f["a"],
            y["v"],
            y["r"],
            y["a"],
            c.ia_margin,
            c.ia_normalize,
            reduction="none",
        )

    def modality_alignment(self, rows: Rows) -> torch.Tensor:
        """Eq. 15 on the Eq. 13–14 prototypes (or on Z without them), through the
        auxiliary modality (or V–IR directly without the bridge): Table 3's two schemes."""
        c, y = self.cfg, rows.y
        keys = "vra" if c.ma_bridge else "vr"
        z = {k: rows.z[k] for k in keys}
        t = self.prototypes_step(z) if c.ma_prototypes else z
        if c.ma_bridge:
            return modality_alignment_loss(t["v"], t["r"], t["a"], y["v"], y["r"], y["a"])
        return direct_modality_alignment_loss(t["v"], t["r"], y["v"], y["r"])

    @torch.no_grad()
    def monitor(self) -> dict[str, torch.Tensor]:
        """The learnable layer scales (mean of the parameter, before the clamp) and
        ‖W_p − I‖_F of each trained prototype matrix, and two quantities weight decay alone
        leaves at 0 (it multiplies a whole parameter by one factor, so the mean scale and
        ‖W_p − I‖ move with decay alone): each scale's spread over channels (std / mean; all
        channels start equal) and W_p's off-diagonal part relative to its diagonal
        (‖W_p − diag W_p‖_F / mean diag W_p; W_p starts at I)."""
        out = {}
        if self.cfg.auxiliary:
            g = self.generator
            for name, s in (("iscale_v", g.iml_v), ("iscale_r", g.iml_r), ("cscale", g.cml)):
                gamma = s.scale.gamma
                out[name] = gamma.mean()
                out[f"{name}_spread"] = gamma.std() / gamma.mean()
        for k, p in zip("vra", self.prototypes, strict=True):
            if p.weight.requires_grad:
                d = p.weight.detach().clone()
                diag = d.diagonal()  # a view: edits below act on d's diagonal
                scale = diag.mean()
                diag.sub_(1.0)
                out[f"wp_{k}"] = torch.linalg.vector_norm(d)  # ‖W_p − I‖_F
                diag.zero_()
                out[f"wp_{k}_off"] = torch.linalg.vector_norm(d) / scale
        return out

    def training_step(self, batch):
        c = self.cfg
        rows = self.forward_rows(batch)
        lid, tri = self.identity_loss(rows), self.triplet_loss(rows)
        loss = lid + tri
        parts = {"id": lid.detach(), "triplet": tri.detach()}
        if c.ida_weight > 0:
            ida = F.cross_entropy(
                self.aux_classifier(rows.cls["a"]), rows.y["a"], label_smoothing=c.label_smoothing
            )
            loss = loss + c.ida_weight * ida
            parts["ida"] = ida.detach()
        if c.idc_weight > 0:
            idc = self.identity_consistency_loss(rows)
            loss = loss + c.idc_weight * idc
            parts["idc"] = idc.detach()
        if c.ia_weight > 0:
            hinge = self.identity_alignment(rows)
            ia = hinge.sum()
            loss = loss + c.ia_weight * ia
            parts["ia"] = ia.detach()
            if len(hinge):
                parts["ia_active"] = (hinge > 0).float().mean()
        if c.ma_weight > 0:
            ma = self.modality_alignment(rows)
            loss = loss + c.ma_weight * ma
            parts["ma"] = ma.detach()
        with torch.no_grad():
            cv, cr = self.classifiers
            hits = torch.cat(
                [
                    cv(rows.cls["v"]).argmax(1) == rows.y["v"],
                    cr(rows.cls["r"]).argmax(1) == rows.y["r"],
                ]
            )
            parts["acc"] = hits.float().mean()
        return {"loss": loss, **parts, **self.monitor()}


@METHODS.register("mun")
def build_mun(cfg, model) -> MUN:
    if model.classifier is None:
        raise ValueError("mun is supervised: the model needs the training identities")
    return MUN(model, model.classifier.out_features, cfg)
