"""Unsupervised VI-ReID on cluster memories: Cluster-Contrast with one memory per modality
(the stage-1 recipe shared by ADCA, PGM and MMM), plus the cross-modality steps of

* ADCA (Yang et al., ACM MM 2022): each epoch, visible memories of associated clusters are
  pulled to the infrared ones: M_V[v] ← λ·M_V[v] + (1−λ)·M_I[i] (λ = 0.1);
* PGM (Wu & Ye, CVPR 2023): Hungarian matching of cluster centroids and an alternating
  cross loss — infrared features against the visible memory on odd epochs, visible
  features against the infrared memory on even epochs — weighted 0.25.

Loss per step: ClusterNCE(visible, both views) + ClusterNCE(infrared) [+ cross term].
Memories are rebuilt from the new clusters every epoch (they are not checkpointed: a
resumed run re-clusters at the start of its epoch like any other epoch).
"""

from __future__ import annotations

import numpy as np
import torch

from ..clustering import adca_associate, centroids, pgm_cost, progressive_match
from ..losses.memory import ClusterMemory
from ..registry import METHODS
from .base import Method

VIS, IR = 0, 1


class ClusterContrast(Method):
    name = "cluster_contrast"
    unsupervised = True

    def __init__(
        self,
        model,
        temp: float = 0.05,
        momentum: float = 0.1,
        memory: str = "mean",
        cross: str = "none",
        cross_weight: float = 0.25,
        adca_lambda: float = 0.1,
        adca_threshold: float = 0.5,
    ) -> None:
        super().__init__(model)
        self.temp, self.momentum, self.memory_mode = temp, momentum, memory
        self.cross, self.cross_weight = cross, cross_weight
        self.adca_lambda, self.adca_threshold = adca_lambda, adca_threshold
        self.memories: dict[int, ClusterMemory] = {}  # plain dict: sizes change per epoch
        self.v2i = self.i2v = None
        self._last: tuple | None = None

    def _memory(self, feats: np.ndarray, labels: np.ndarray) -> ClusterMemory:
        cent = torch.from_numpy(centroids(feats, labels))
        mem = ClusterMemory(cent.shape[1], len(cent), self.temp, self.momentum, self.memory_mode)
        mem.to(next(self.model.parameters()).device).reset(cent)
        return mem

    @torch.no_grad()
    def on_clusters(
        self, epoch: int, feats: dict[int, np.ndarray], labels: dict[int, np.ndarray]
    ) -> dict[str, float]:
        """New pseudo-labels for this epoch (contiguous 0..C−1, −1 = outlier)."""
        from ..engine.distributed import broadcast_object, get_rank

        self.memories = {m: self._memory(feats[m], labels[m]) for m in (VIS, IR)}
        extras: dict[str, float] = {}
        # the association is computed once (rank 0 under DDP) and broadcast
        assoc = broadcast_object(self._associate(feats, labels) if get_rank() == 0 else None)
        if self.cross == "adca":
            pairs = assoc
            if pairs:
                v, i = (torch.tensor(x) for x in zip(*pairs, strict=True))
                mv, mi = self.memories[VIS].features, self.memories[IR].features
                # ADCA applies the same blend to the infrared entry with itself (a no-op)
                mv[v] = self.adca_lambda * mv[v] + (1 - self.adca_lambda) * mi[i]
            extras["cross_pairs"] = float(len(pairs))
        elif self.cross == "pgm":
            v2i, i2v = assoc
            dev = next(self.model.parameters()).device
            self.v2i, self.i2v = torch.from_numpy(v2i).to(dev), torch.from_numpy(i2v).to(dev)
            extras["cross_pairs"] = float(min(len(v2i), len(i2v)))
        return extras

    def _associate(self, feats, labels):
        """ADCA: one-to-one label pairs; PGM: (visible → infrared, infrared → visible)."""
        if self.cross == "adca":
            return adca_associate(
                feats[VIS], labels[VIS], feats[IR], labels[IR], self.adca_threshold
            )
        if self.cross == "pgm":
            return progressive_match(
                pgm_cost(centroids(feats[VIS], labels[VIS]), centroids(feats[IR], labels[IR]))
            )
        return None

    def cross_labels(self) -> dict[str, np.ndarray] | None:
        """Visible cluster → infrared cluster, when the method associates them."""
        return None if self.v2i is None else {"matched": self.v2i.cpu().numpy()}

    def training_step(self, batch):
        out = self.model(batch["images"], batch["modality"])
        out, batch = self.global_batch(out, batch)  # DDP: every rank's rows
        f, y, m = out["feat"], batch["labels"], batch["modality"]
        parts = {}
        loss = f.new_zeros(())
        for mod, key in ((VIS, "nce_visible"), (IR, "nce_infrared")):
            sel = m == mod
            if sel.any():  # a batch may lack a modality (degenerate clusterings)
                parts[key] = self.memories[mod](f[sel].float(), y[sel])
                loss = loss + parts[key]
        if self.cross == "pgm" and self.cross_weight and self.v2i is not None:
            if self.epoch % 2 == 1 and (m == IR).any():
                cross = self.memories[VIS](f[m == IR].float(), self.i2v[y[m == IR]])
            elif (m == VIS).any():
                cross = self.memories[IR](f[m == VIS].float(), self.v2i[y[m == VIS]])
            else:
                cross = f.new_zeros(())
            parts["cross"] = cross.detach()
            loss = loss + self.cross_weight * cross
        self._last = (f.detach(), y, m)
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        if self._last is None:
            return
        f, y, m = self._last
        for mod, mem in self.memories.items():
            sel = m == mod  # no `if sel.any()`: every rank runs every update (DDP)
            mem.update(f[sel], y[sel])
        self._last = None


@METHODS.register("cluster_contrast")
def build_cluster_contrast(cfg, model) -> ClusterContrast:
    return ClusterContrast(
        model,
        cfg.temp,
        cfg.momentum,
        cfg.memory,
        cfg.cross,
        cfg.cross_weight,
        cfg.adca_lambda,
        cfg.adca_threshold,
    )
