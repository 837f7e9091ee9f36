"""ECUL: Extended Cross-Modality United Learning (Wu, Yang, He, Hu; arXiv 2412.19134), in
``vireid``'s reading (no public code; the full paper was not retrieved here;
docs/methods/ecul.md says what is stated, what is chosen and why). Every component,
switched off, leaves a baseline we match elsewhere.

Per epoch (``on_clusters``), on the clustering features:

* intra-modality clusters (the engine's per-modality Jaccard + DBSCAN) → visible and
  infrared cluster memories: one row per cluster, or, in TSMem's stage 1 with
  ``stage1_proxies: camera``, one row per (cluster, camera) read as a set
  (``losses.grouped_memory``);
* inter-modality clusters: DBSCAN on the EMCC distance over both modalities
  (``clustering.emcc``: camera-aware k2 expansion or camera-aware search, k3 negative
  filter) → a cross-modal memory of per-modality halves whose mean is the proxy at every
  use, so it stays ½(visible + infrared) under one-modality batches (``cross_memory:
  halves``; ``single`` = PCAL's one row, initialised to ½(mean_V + mean_R));
* inter-modality instance selection inside mixed joint clusters
  (``clustering.instance_selection``) and an instance memory of every training sample.

Per step: L = L_V + L_R + λ_cross·L_VR (ClusterNCE, τ) + λ_ins·L_ins (instance InfoNCE,
τ_ins). After the optimiser step every cluster memory row moves by the TSMem rule of the
epoch (``losses.tsmem``) towards its own samples, the instance memory by a per-sample
momentum step.

Everything is rebuilt from the weights at the start of each epoch and the random rule's
generator is seeded by (run seed, epoch), so checkpoints at epoch ends resume exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from ..clustering import centroids, cluster_quality
from ..clustering.camera_search import CameraSearch
from ..clustering.emcc import emcc_labels
from ..clustering.instance_selection import mixed_cluster_mask, select_instances
from ..clustering.pseudo_labels import build_ann
from ..losses.grouped_memory import GroupedMemory
from ..losses.instance import instance_nce
from ..losses.memory import ClusterMemory, modality_nce
from ..losses.tsmem import TwoStepMemory, tsmem_stage
from ..registry import METHODS
from .base import Method

VIS, IR = 0, 1


def cross_modal_centres(feats: np.ndarray, joint: np.ndarray, is_ir: np.ndarray) -> np.ndarray:
    """(C, D) cross-modal aggregation per joint cluster: ½(mean_V + mean_R) where both
    modalities are present, else the present modality's mean."""
    c = int(joint.max()) + 1 if (joint >= 0).any() else 0
    means, counts = [], []
    for sel in (~is_ir, is_ir):
        m = sel & (joint >= 0)
        s = np.zeros((c, feats.shape[1]))
        np.add.at(s, joint[m], feats[m].astype(np.float64))
        n = np.bincount(joint[m], minlength=c)
        means.append(s / np.maximum(n, 1)[:, None])
        counts.append(n > 0)
    both = counts[0] & counts[1]
    out = np.where(counts[0][:, None], means[0], means[1])
    out[both] = 0.5 * (means[0][both] + means[1][both])
    return out.astype(np.float32)


def joint_v2i(intra_v: np.ndarray, intra_r: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """Visible cluster → the infrared cluster it shares most with through the joint
    clusters (affinity Σ_j p(j | v)·p(j | r); −1 when none is shared). For the
    cross-modality ARI diagnostic only."""
    nv = len(intra_v)
    jv, jr = joint[:nv], joint[nv:]
    n_j = int(joint.max()) + 1 if (joint >= 0).any() else 0
    cv = int(intra_v.max()) + 1 if (intra_v >= 0).any() else 0
    cr = int(intra_r.max()) + 1 if (intra_r >= 0).any() else 0

    def share(intra, j, c):  # (c, n_j) row-normalised co-membership counts
        m = (intra >= 0) & (j >= 0)
        a = np.zeros((c, n_j))
        np.add.at(a, (intra[m], j[m]), 1.0)
        return a / np.maximum(a.sum(1, keepdims=True), 1)

    aff = share(intra_v, jv, cv) @ share(intra_r, jr, cr).T
    if not aff.size:
        return np.full(cv, -1, np.int64)
    return np.where(aff.max(1) > 0, aff.argmax(1), -1).astype(np.int64)


class ECUL(Method):
    name = "ecul"
    unsupervised = True

    def __init__(self, model, cfg) -> None:
        super().__init__(model)
        self.cfg = cfg
        # plain dict, not submodules: sizes change per epoch and nothing is checkpointed
        self.memories: dict[str, ClusterMemory] = {}
        self.samples: dict[int, list] | None = None  # set by the pseudo-label hook
        self.seed = torch.initial_seed()  # rank 0's is broadcast with the plan
        self.generator = torch.Generator()
        self._arrays: dict[str, torch.Tensor] = {}
        self.v2i: np.ndarray | None = None
        self._last: tuple | None = None
        self.rule = "sequential"  # the epoch's TSMem update rule (set in on_clusters)

    def set_samples(self, samples: dict[int, list]) -> None:
        """The training samples per modality: cameras for EMCC, identities for the joint
        clustering's quality (a diagnostic; never used for training)."""
        self.samples = samples

    def _device(self):
        return next(self.model.parameters()).device

    def _cameras(self) -> np.ndarray:
        """(N,) camera id of every training sample, visible first (the feature order)."""
        if self.samples is None:
            raise RuntimeError("ECUL reads cameras (EMCC, camera proxies): set_samples() first")
        return np.array([s.camid for m in (VIS, IR) for s in self.samples[m]])

    # ------------------------------------------------------------ pseudo-label step
    def plan(self, epoch: int, feats: dict, labels: dict) -> dict:
        """The epoch's joint clusters and instance selection as NumPy arrays (rank 0;
        broadcast under DDP)."""
        c = self.cfg
        x = np.concatenate([feats[VIS], feats[IR]])
        nv = len(feats[VIS])
        is_ir = np.r_[np.zeros(nv, bool), np.ones(len(feats[IR]), bool)]
        camera = self._cameras() if c.camera_aware else None
        search = None
        if c.camera_aware and c.camera_rule == "search":
            search = CameraSearch(**c.camera_search.model_dump())
        joint = emcc_labels(
            x,
            c.joint_k1,
            c.joint_k2,
            c.joint_k3,
            c.cluster.eps,
            c.cluster.min_samples,
            modality=is_ir,
            camera=camera,
            knn_backend=c.cluster.knn_backend,
            device=c.cluster.device,
            ann=build_ann(c.cluster),
            camera_search=search,
        )
        mixed = mixed_cluster_mask(joint, is_ir)
        p = {
            "joint": joint,
            "joint_loss": np.where(mixed, joint, -1) if c.cross_mixed_only else joint,
            "positives": select_instances(x, joint, is_ir, c.selection, c.selection_k),
            "seed": self.seed * 1_000_003 + epoch,
            "v2i": joint_v2i(labels[VIS], labels[IR], joint),
        }
        n_joint = len(np.unique(joint[joint >= 0]))
        extras = {
            "joint_clusters": float(n_joint),
            "joint_mixed_clusters": float(len(np.unique(joint[mixed]))),
            "selected_ratio": float((p["positives"] >= 0).any(1).mean()),
        }
        if self.samples is not None:  # quality against the identities: diagnostic only
            pids = np.array([s.pid for m in (VIS, IR) for s in self.samples[m]])
            q = cluster_quality(joint, pids)
            extras.update({f"joint_{k}": v for k, v in q.items() if k not in ("true_ids",)})
        p["extras"] = extras
        return p

    @torch.no_grad()
    def on_clusters(self, epoch: int, feats: dict, labels: dict) -> dict[str, float]:
        from ..engine.distributed import broadcast_object, get_rank

        p = broadcast_object(self.plan(epoch, feats, labels) if get_rank() == 0 else None)
        c, dev = self.cfg, self._device()
        cat = np.concatenate
        intra = cat([labels[VIS], labels[IR]])
        x = cat([feats[VIS], feats[IR]])
        is_ir = np.r_[np.zeros(len(feats[VIS]), np.int64), np.ones(len(feats[IR]), np.int64)]
        # the epoch's TSMem stage: the update rule and how many rows a cluster keeps
        self.rule, proxies = tsmem_stage(epoch, c.tsmem)
        camera = None
        if proxies == "camera" or self.samples is not None:
            camera = np.unique(self._cameras(), return_inverse=True)[1].ravel()
        nv = len(feats[VIS])
        self.memories = {
            "v": self._intra_memory(feats[VIS], labels[VIS], camera, proxies, slice(0, nv)),
            "r": self._intra_memory(feats[IR], labels[IR], camera, proxies, slice(nv, None)),
        }
        if (p["joint"] >= 0).any():
            self.memories["vr"] = self._cross_memory(x, p["joint"], is_ir)
        bank = ClusterMemory(feats[VIS].shape[1], 0, c.instance_temp, c.instance_momentum)
        bank.to(dev).reset(torch.from_numpy(x))
        self.memories["instance"] = bank
        self.generator.manual_seed(int(p["seed"]) % (1 << 63))
        self.v2i = p["v2i"]
        self._arrays = {
            "intra": torch.from_numpy(intra).to(dev),
            "joint": torch.from_numpy(p["joint"]).to(dev),
            "joint_loss": torch.from_numpy(p["joint_loss"]).to(dev),
            "positives": torch.from_numpy(p["positives"]).to(dev),
        }
        if camera is not None:
            self._arrays["camera"] = torch.from_numpy(camera).to(dev)
        rows = sum(m.features.shape[0] for m in (self.memories["v"], self.memories["r"]))
        clusters = sum(m.num_clusters for m in (self.memories["v"], self.memories["r"]))
        return {
            **p["extras"],
            "memory_rule": self.rule,
            "memory_proxies": proxies,
            "memory_rows_per_cluster": rows / max(clusters, 1),
        }

    def _intra_memory(self, feats, labels, camera, proxies: str, part: slice):
        """A modality's cluster memory: one row per cluster, or per (cluster, camera)."""
        c = self.cfg
        if proxies == "camera":
            mem = GroupedMemory.from_features(
                feats,
                labels,
                camera[part],
                c.temp,
                c.momentum,
                compose="set",
                read=c.tsmem.camera_read,
            )
            return mem.to(self._device())
        return self._memory(centroids(feats, labels), c.temp, c.momentum)

    def _cross_memory(self, x: np.ndarray, joint: np.ndarray, is_ir: np.ndarray):
        """The cross-modal memory over every joint cluster: per-modality halves whose mean
        is the proxy at every use (``halves``), or PCAL's one row initialised to
        ½(mean_V + mean_R) (``single``)."""
        c = self.cfg
        if c.cross_memory == "single":
            cent = cross_modal_centres(x, joint, is_ir.astype(bool))
            return self._memory(cent, c.temp, c.momentum)
        mem = GroupedMemory.from_features(x, joint, is_ir, c.temp, c.momentum, compose="mean")
        return mem.to(self._device())

    def cross_labels(self) -> dict[str, np.ndarray] | None:
        """Visible → infrared cluster map read off the joint clusters (diagnostic)."""
        return None if self.v2i is None else {"matched": self.v2i}

    def _memory(self, cent: np.ndarray, temp: float, momentum: float) -> TwoStepMemory:
        mem = TwoStepMemory(cent.shape[1], len(cent), temp, momentum)
        mem.to(self._device()).reset(torch.from_numpy(cent))
        return mem

    def _cross_active(self) -> bool:
        return self.epoch + 1 >= self.cfg.cross_start_epoch

    # ------------------------------------------------------------------ training
    def training_step(self, batch):
        c = self.cfg
        out = self.model(batch["images"], batch["modality"])
        out, batch = self.global_batch(out, batch)  # DDP: every rank's rows
        f, m, idx = out["feat"].float(), batch["modality"], batch["index"]
        a = {k: v[idx] for k, v in self._arrays.items() if k != "positives"}
        parts = modality_nce(self.memories, f, m, a["intra"], VIS, IR)
        loss = sum(parts.values(), f.new_zeros(()))
        sel = a["joint_loss"] >= 0
        if c.cross_weight and self._cross_active() and "vr" in self.memories and sel.any():
            parts["nce_cross"] = self.memories["vr"](f[sel], a["joint_loss"][sel])
            loss = loss + c.cross_weight * parts["nce_cross"]
        if c.instance_weight and self._cross_active():
            ins = instance_nce(
                f,
                idx,
                self.memories["instance"].features,
                self._arrays["positives"],
                self._arrays["joint"],
                c.instance_temp,
            )
            if ins.requires_grad:  # some sample of the batch had a selected positive
                parts["instance"] = ins
                loss = loss + c.instance_weight * ins
        self._last = (f.detach(), m, idx, a)
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        if self._last is None:
            return
        f, m, idx, a = self._last
        # no `if sel.any()`: every rank runs every update (ClusterMemory.update, DDP)
        for mod, key in ((VIS, "v"), (IR, "r")):
            sel = (m == mod) & (a["intra"] >= 0)
            self._update(self.memories[key], f[sel], a["intra"][sel], a.get("camera", m)[sel])
        sel = a["joint_loss"] >= 0
        if "vr" in self.memories and self._cross_active():
            self._update(self.memories["vr"], f[sel], a["joint_loss"][sel], m[sel])
        if self.cfg.instance_weight and self._cross_active():
            self.memories["instance"].update(f, idx)  # per sample; two views of an image in turn
        self._last = None

    def _update(self, mem, feats, labels, groups) -> None:
        """The epoch's TSMem rule; a grouped memory moves the row of each sample's group."""
        if isinstance(mem, GroupedMemory):
            mem.update_groups(feats, labels, groups, self.rule, self.generator)
        else:
            mem.update_with(feats, labels, self.rule, self.generator)


@METHODS.register("ecul")
def build_ecul(cfg, model) -> ECUL:
    return ECUL(model, cfg)
