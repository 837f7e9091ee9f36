"""MMM: Multi-Memory Matching for unsupervised VI-ReID (Shi et al., ECCV 2024).

Per epoch (``on_clusters``), on the clustering features:

* **CMC** — clusters of the visible set, the infrared set (from the engine) and the joint
  set (modality-balanced Jaccard, k1 40 / k2 32 on SYSU-MM01); three memories: visible,
  infrared, and mixed (mean of the two modality means of each joint cluster that holds
  both modalities). L_CMC = L_V + L_R + L_VR (ClusterNCE, τ 0.05).
* **SCA confidence** — per-sample ClusterNCE loss against the fresh centroids, a
  2-component GMM per modality, confidence = posterior of the low-loss component. Memories
  start from confidence-weighted centres Σ w·f / N and are updated with confidence-scaled
  momentum steps.
* **MMLM** — k-means splits every intra-modality cluster into n memories; the cost between a
  visible and an infrared cluster is the sum of nearest-memory distances; a Hungarian
  assignment (progressive for unequal counts) transfers infrared labels to the matched
  visible clusters. Batches then hold P matched identities × (K visible + K infrared).

Per step: L_CMC + λ_Intra·L_Intra + λ_Inter·L_Inter, with L_Intra the squared distance of
each normalised feature to its confidence-weighted cluster centre (from epoch 1) and
L_Inter the stop-gradient MMD² between an identity's visible and infrared features (from
epoch 15). Diagnostics logged every epoch: correspondence ARI of the multi-memory matching
and of single-memory (centroid) matching on the same features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..clustering import centroids, cluster_labels, pgm_cost, progressive_match
from ..clustering.dbscan import relabel_contiguous
from ..clustering.multi_memory import (
    cluster_memories,
    match_clusters,
    multi_memory_cost,
    transfer_labels,
)
from ..clustering.pseudo_labels import build_ann
from ..losses.confidence import gmm_confidence
from ..losses.memory import ClusterMemory
from ..losses.mmd import inter_modality_mmd
from ..registry import METHODS
from ..utils.io import arrays_to_tensors, tensors_to_arrays
from .base import Method

VIS, IR = 0, 1


def per_sample_nce(
    feats: np.ndarray, labels: np.ndarray, cent: np.ndarray, temp: float
) -> np.ndarray:
    """ClusterNCE loss of every clustered sample against normalised centroids (NaN for
    outliers)."""
    out = np.full(len(feats), np.nan)
    m = labels >= 0
    if m.any():
        f = torch.from_numpy(feats[m]).float()
        c = F.normalize(torch.from_numpy(cent).float(), dim=1)
        logits = F.normalize(f, dim=1) @ c.T / temp
        out[m] = F.cross_entropy(logits, torch.from_numpy(labels[m]), reduction="none").numpy()
    return out


def weighted_centres(feats: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ w·f / N per cluster (divided by the count, as the paper writes it)."""
    return centroids(feats * w[:, None], labels)


class MMM(Method):
    name = "mmm"
    unsupervised = True

    def __init__(self, model, cfg) -> None:
        super().__init__(model)
        self.cfg = cfg
        self.memories: dict[str, ClusterMemory] = {}
        self.v2r: np.ndarray | None = None
        self.v2r_single: np.ndarray | None = None
        self.sampling = "paired"
        self.sampling_labels: dict[int, np.ndarray] = {}
        self.freeze_labels = False
        self.frozen: dict | None = None  # plan and labels of `schedule: once`
        self._arrays: dict[str, torch.Tensor] = {}
        self._centres: dict[int, torch.Tensor] = {}
        self._last: tuple | None = None

    # ------------------------------------------------------------ pseudo-label step
    def _device(self):
        return next(self.model.parameters()).device

    def _memory(self, cent: np.ndarray) -> ClusterMemory:
        mem = ClusterMemory(cent.shape[1], len(cent), self.cfg.temp, self.cfg.momentum)
        mem.to(self._device()).reset(torch.from_numpy(cent))
        return mem

    def _joint_labels(self, feats, labels) -> np.ndarray:
        c = self.cfg
        x = np.concatenate([feats[VIS], feats[IR]])
        is_ir = np.r_[np.zeros(len(feats[VIS]), bool), np.ones(len(feats[IR]), bool)]
        joint = cluster_labels(
            x,
            c.joint_k1,
            c.joint_k2,
            c.cluster.eps,
            c.cluster.min_samples,
            c.cluster.knn_backend,
            modality=is_ir,
            device=c.cluster.device,
            ann=build_ann(c.cluster),
        )
        # only joint clusters holding both modalities feed L_VR (MMM's associated clusters)
        both = np.intersect1d(joint[~is_ir], joint[is_ir])
        joint = np.where(np.isin(joint, both[both >= 0]), joint, -1)
        return relabel_contiguous(joint)

    def plan(self, epoch: int, feats: dict, labels: dict) -> dict:
        """Everything the epoch's clusters imply, as NumPy arrays (GMM confidences, weighted
        centres, joint clusters, matching). Computed once (rank 0 under DDP) and broadcast,
        so every rank trains on identical memories and labels."""
        c = self.cfg
        p: dict = {"extras": {}, "conf": {}, "centres": {}}
        for m in (VIS, IR):
            cent = centroids(feats[m], labels[m])
            w = np.zeros(len(labels[m]))
            ok = labels[m] >= 0
            if c.confidence:
                w[ok] = gmm_confidence(per_sample_nce(feats[m], labels[m], cent, c.temp)[ok])
            else:
                w[ok] = 1.0
            p["conf"][m] = w
            p["centres"][m] = weighted_centres(feats[m], labels[m], w)
            tag = "visible" if m == VIS else "infrared"
            p["extras"][f"{tag}_confidence"] = float(w[ok].mean())
        nv = len(labels[VIS])
        p["joint"] = np.full(nv + len(labels[IR]), -1, np.int64)
        p["joint_centres"] = None
        if c.use_joint:
            joint = p["joint"] = self._joint_labels(feats, labels)
            if (joint >= 0).any():
                jv = centroids(feats[VIS], joint[:nv])
                jr = centroids(feats[IR], joint[nv:])
                p["joint_centres"] = 0.5 * (jv + jr)
            p["extras"]["joint_clusters"] = float(len(np.unique(joint[joint >= 0])))
        p["unified"] = {VIS: labels[VIS], IR: labels[IR]}
        p["v2r"] = p["v2r_single"] = None
        if c.mmlm and epoch + 1 >= c.match_epoch:
            mv, cv = cluster_memories(feats[VIS], labels[VIS], c.num_memories, c.kmeans_n_init)
            mr, cr = cluster_memories(feats[IR], labels[IR], c.num_memories, c.kmeans_n_init)
            cost = multi_memory_cost(mv, cv, mr, cr, c.cost)
            p["v2r"] = match_clusters(cost, c.matching, c.compat_skip_last_cluster)
            p["unified"] = dict(
                zip((VIS, IR), transfer_labels(labels[VIS], labels[IR], p["v2r"]), strict=True)
            )
            # single-memory (centroid) matching on the same features, for the diagnostic
            p["v2r_single"] = progressive_match(
                pgm_cost(centroids(feats[VIS], labels[VIS]), centroids(feats[IR], labels[IR]))
            )[0]
        return p

    @torch.no_grad()
    def on_clusters(self, epoch: int, feats: dict, labels: dict) -> dict[str, float]:
        from ..engine.distributed import broadcast_object, get_rank

        p = broadcast_object(self.plan(epoch, feats, labels) if get_rank() == 0 else None)
        self._use_plan(p, labels)
        if self.freeze_labels:  # `schedule: once`: kept, and checkpointed, from here on
            self.frozen = {"plan": p, "labels": labels}
        return p["extras"]

    def extra_state(self) -> dict:
        if not self.freeze_labels:
            return {}  # per-epoch labels and memories are rebuilt from the weights
        return {
            "frozen": arrays_to_tensors(self.frozen),
            "memories": {k: m.features.detach().cpu() for k, m in self.memories.items()},
        }

    def load_extra_state(self, state: dict) -> None:
        if "frozen" not in state:
            return
        self.frozen = tensors_to_arrays(state["frozen"])
        self._use_plan(self.frozen["plan"], self.frozen["labels"])
        for k, f in state["memories"].items():
            self.memories[k].features.copy_(f)

    @torch.no_grad()
    def _use_plan(self, p: dict, labels: dict) -> None:
        dev = self._device()
        centres = p["centres"]
        self.memories = {"v": self._memory(centres[VIS]), "r": self._memory(centres[IR])}
        if p["joint_centres"] is not None:
            self.memories["vr"] = self._memory(p["joint_centres"])
        self._centres = {
            m: F.normalize(torch.from_numpy(centres[m]), dim=1).to(dev) for m in (VIS, IR)
        }
        self.v2r, self.v2r_single = p["v2r"], p["v2r_single"]
        if self.v2r is not None:
            self.freeze_labels = self.cfg.schedule == "once"
        self.sampling = "cross" if self.v2r is not None else "paired"
        self.sampling_labels = p["unified"]
        cat = np.concatenate
        self._arrays = {
            "intra": torch.from_numpy(cat([labels[VIS], labels[IR]])).to(dev),
            "joint": torch.from_numpy(p["joint"]).to(dev),
            "unified": torch.from_numpy(cat([p["unified"][VIS], p["unified"][IR]])).to(dev),
            "conf": torch.from_numpy(cat([p["conf"][VIS], p["conf"][IR]])).float().to(dev),
        }

    def cross_labels(self) -> dict[str, np.ndarray] | None:
        """Visible → infrared cluster maps: the multi-memory matching and, for comparison,
        single-memory matching on the same features."""
        if self.v2r is None:
            return None
        return {"matched": self.v2r, "single_memory": self.v2r_single}

    # ------------------------------------------------------------------ training
    def training_step(self, batch):
        c = self.cfg
        out = self.model(batch["images"], batch["modality"])
        f, m, idx = out["feat"].float(), batch["modality"], batch["index"]
        a = {k: v[idx] for k, v in self._arrays.items()}
        parts: dict[str, torch.Tensor] = {}
        loss = f.new_zeros(())
        for mod, key, name in ((VIS, "v", "nce_visible"), (IR, "r", "nce_infrared")):
            sel = (m == mod) & (a["intra"] >= 0)
            if sel.any():
                parts[name] = self.memories[key](f[sel], a["intra"][sel])
                loss = loss + parts[name]
        sel = a["joint"] >= 0
        if "vr" in self.memories and sel.any():
            parts["nce_joint"] = self.memories["vr"](f[sel], a["joint"][sel])
            loss = loss + parts["nce_joint"]
        if c.lambda_intra and self.epoch + 1 >= c.intra_start_epoch:
            parts["intra"] = self._intra(f, m, a)
            loss = loss + c.lambda_intra * parts["intra"]
        if c.lambda_inter and self.v2r is not None and self.epoch + 1 >= c.inter_start_epoch:
            feats = out["pool"] if c.inter_feature == "pool" else out["feat"]
            parts["inter"] = inter_modality_mmd(feats.float(), a["unified"], m == IR)
            loss = loss + c.lambda_inter * parts["inter"]
        self._last = (f.detach(), m, a)
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}

    def _intra(self, f, m, a) -> torch.Tensor:
        fn = F.normalize(f, dim=1)
        ok = a["intra"] >= 0
        if not ok.any():
            return f.new_zeros(())
        centre = torch.empty_like(fn)
        for mod in (VIS, IR):
            sel = ok & (m == mod)
            centre[sel] = self._centres[mod][a["intra"][sel]]
        diff = fn[ok] - centre[ok]
        if self.cfg.intra_loss == "l1":  # the official code: confidence-weighted L1
            return (diff.abs().sum(1) * a["conf"][ok]).mean()
        return diff.pow(2).sum(1).mean()

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        if self._last is None:
            return
        f, m, a = self._last
        for mod, key in ((VIS, "v"), (IR, "r")):
            sel = (m == mod) & (a["intra"] >= 0)
            if sel.any():
                self.memories[key].update(f[sel], a["intra"][sel], a["conf"][sel])
        sel = a["joint"] >= 0
        if "vr" in self.memories and sel.any():
            self.memories["vr"].update(f[sel], a["joint"][sel])
        self._last = None


@METHODS.register("mmm")
def build_mmm(cfg, model) -> MMM:
    return MMM(model, cfg)
