"""MMM: Multi-Memory Matching for unsupervised VI-ReID (Shi et al., ECCV 2024).

Per epoch (``on_clusters``), on the clustering features (the plan: ``mmm_plan.py``):

* **CMC** — clusters of the visible set, the infrared set (from the engine) and the joint
  set (modality-balanced Jaccard, k1 40 / k2 32 on SYSU-MM01); three memories: visible,
  infrared, and mixed (mean of the two modality means of each joint cluster).
  L_CMC = L_V + L_R + L_VR (ClusterNCE, τ 0.05).
* **MMLM** (from ``match_start_epoch``; CMC alone before it) — k-means splits every
  intra-modality cluster into n memories; the cost between a visible and an infrared
  cluster is the sum of nearest-memory distances; a Hungarian assignment (progressive for
  unequal counts) transfers infrared labels to the matched visible clusters (Y^v := QY^r).
  Every identity term then reads the unified labels: visible clusters matched to one
  infrared cluster share one memory row and one Intra centre, and batches hold P matched
  identities × (K visible + K infrared).
* **SCA confidence** — per-sample ClusterNCE loss against the fresh centroids, a
  2-component GMM per modality, confidence = posterior of the low-loss component. Memories
  start from confidence-weighted centres Σ w·f / N and are updated with confidence-scaled
  momentum steps.

Per step: λ_CMC·L_CMC + λ_Intra·L_Intra + λ_Inter·L_Inter, the paper's loss. L_Intra:
squared distance of each normalised feature to its identity's confidence-weighted centre
(from epoch 1); L_Inter: stop-gradient MMD² between an identity's visible and infrared
features (from epoch 15), the cross-modal pull. Options: PGM's cross term L_Cross
(½[NCE(f_v, M_R, partner) + NCE(f_r, M_V, partner)]), a triplet on the unified labels, and
the official stage B's soft-ID CE over a shared classifier (``labels_from``: labels frozen
from a stage-A checkpoint before training, so the classifier's size is known).
``schedule: once`` freezes the labels at the first matching and refits the confidences
and centres every epoch. Diagnostics logged every epoch: correspondence ARI of the
multi-memory matching and of single-memory (centroid) matching on the same features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config.loader import ConfigError
from ..losses.memory import ClusterMemory, modality_nce
from ..losses.mmd import inter_modality_mmd
from ..losses.prototypes import EpochPrototypes
from ..losses.triplet import batch_hard_triplet
from ..registry import METHODS
from ..utils.io import arrays_to_tensors, tensors_to_arrays
from .base import Method
from .mmm_plan import make_plan, per_sample_nce, sca, weighted_centres

__all__ = ["MMM", "per_sample_nce", "second_view_rows", "weighted_centres"]
VIS, IR = 0, 1


def second_view_rows(index: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the rows holding a visible image's second view. The collate puts them
    as a second block of visible rows repeating the first block's indices."""
    out = torch.zeros_like(modality, dtype=torch.bool)
    vis = torch.nonzero(modality == VIS).flatten()
    h = len(vis) // 2
    if h and len(vis) % 2 == 0 and torch.equal(index[vis[:h]], index[vis[h:]]):
        out[vis[h:]] = True
    return out


class MMM(Method):
    name = "mmm"
    unsupervised = True
    # non-local blocks train at the backbone's rate, as in the official (AGW) optimiser,
    # which gives the full rate only to the BNNeck and the classifier
    backbone_prefixes = ("stems.", "layers.", "non_local.")

    def __init__(self, model, cfg) -> None:
        super().__init__(model)
        if cfg.intra_loss == "l1" and cfg.schedule != "once":
            raise ConfigError(
                "method.intra_loss=l1 (the official code's Intra) needs method.schedule=once: "
                "its prototypes come from the previous epoch's batches of the same labels"
            )
        self.cfg = cfg
        self.classifier: nn.Linear | None = None  # built from the first (frozen) plan
        self.memories: dict[str, ClusterMemory] = {}
        self.v2r: np.ndarray | None = None
        self.v2r_single: np.ndarray | None = None
        self.sampling = "paired"
        self.sampling_labels: dict[int, np.ndarray] = {}
        self.freeze_labels = False
        self.frozen: dict | None = None  # plan and labels of `schedule: once`
        self.protos: EpochPrototypes | None = None  # the code's L1 Intra targets
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

    def plan(self, epoch: int, feats: dict, labels: dict) -> dict:
        """The epoch's plan (``mmm_plan.make_plan``): matching, identities, confidences,
        centres."""
        return make_plan(self.cfg, epoch, feats, labels)

    @torch.no_grad()
    def on_clusters(self, epoch: int, feats: dict, labels: dict) -> dict[str, float]:
        from ..engine.distributed import broadcast_object, get_rank

        p = broadcast_object(self.plan(epoch, feats, labels) if get_rank() == 0 else None)
        if self.cfg.lambda_id:
            self._build_classifier(p["num_classes"])
        self._use_plan(p)
        self._new_prototypes(p["unified"])
        if self.freeze_labels:  # `schedule: once`: kept, and checkpointed, from here on
            self.frozen = {"plan": p, "labels": labels}
        return p["extras"]

    @torch.no_grad()
    def refresh(self, epoch: int, feats: dict) -> dict[str, float]:
        """``schedule: once``, every epoch after the freeze: the labels and the matching
        stay; the GMM confidences, the centres (memories, Intra targets) and the L1
        prototypes are refitted, as the official code refits its GMM and prototypes."""
        from ..engine.distributed import broadcast_object, get_rank

        p = self.frozen["plan"]
        fit = sca(self.cfg, feats, p["ident"], p["joint"]) if get_rank() == 0 else None
        p = {**p, **broadcast_object(fit)}
        self._use_plan(p)
        if self.protos is not None:
            self.protos.finish()
        return p["extras"]

    def _build_classifier(self, num_classes: int) -> None:
        """The official stage B's shared classifier over the unified identities:
        ``Linear(D, C, bias=False)`` on the BN feature, N(0, 0.001) init (``model.py``).
        It must exist before the optimiser is built (``method.labels_from``)."""
        if self.classifier is not None:
            if self.classifier.out_features != num_classes:
                raise RuntimeError("the classifier's classes changed after the optimiser was built")
            return
        if num_classes == 0:
            raise ConfigError(
                "method.lambda_id: the first matching produced no identity; check "
                "method.labels_from and method.match_start_epoch=1"
            )
        dim = self.model.bottleneck.num_features
        self.classifier = nn.Linear(dim, num_classes, bias=False).to(self._device())
        nn.init.normal_(self.classifier.weight, 0.0, 0.001)

    def _new_prototypes(self, labels: dict) -> None:
        """New (unified) labels: an empty prototype bank (visible view 1, view 2, infrared)."""
        if self.cfg.intra_loss != "l1":
            return
        n = max(int(labels[m].max()) + 1 for m in (VIS, IR))
        dim = self.model.bottleneck.num_features
        self.protos = EpochPrototypes(3, max(n, 1), dim, self._device())

    def extra_state(self) -> dict:
        if not self.freeze_labels:
            return {}  # per-epoch labels and memories are rebuilt from the weights
        state = {
            "frozen": arrays_to_tensors(self.frozen),
            "memories": {k: m.features.detach().cpu() for k, m in self.memories.items()},
        }
        if self.protos is not None:
            state["prototypes"] = self.protos.state()
        return state

    def load_extra_state(self, state: dict) -> None:
        if "frozen" not in state:
            return
        self.frozen = tensors_to_arrays(state["frozen"])
        labels = self.frozen["labels"]
        if self.cfg.lambda_id:
            self._build_classifier(int(self.frozen["plan"]["num_classes"]))
        self._use_plan(self.frozen["plan"])
        for k, f in state["memories"].items():
            self.memories[k].features.copy_(f)
        if "prototypes" in state:
            self._new_prototypes(labels)
            self.protos.load(state["prototypes"])

    @torch.no_grad()
    def _use_plan(self, p: dict) -> None:
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
        ident, cat = p["ident"], np.concatenate
        partner = np.full(len(ident[VIS]) + len(ident[IR]), -1, np.int64)
        if p["partner"] is not None:  # each sample's matched identity in the other modality
            r2v = np.full(len(centres[IR]), -1, np.int64)
            has = np.flatnonzero(p["partner"] >= 0)
            r2v[p["partner"][has]] = has
            look = [(p["partner"], ident[VIS]), (r2v, ident[IR])]
            partner = cat([np.where(lab >= 0, lut[np.maximum(lab, 0)], -1) for lut, lab in look])
        self._arrays = {
            "intra": torch.from_numpy(cat([ident[VIS], ident[IR]])).to(dev),
            "joint": torch.from_numpy(p["joint_train"]).to(dev),
            "unified": torch.from_numpy(cat([p["unified"][VIS], p["unified"][IR]])).to(dev),
            "partner": torch.from_numpy(partner).to(dev),
            "cls": torch.from_numpy(
                p["classes"] if p["classes"] is not None else np.full(len(partner), -1)
            ).to(dev),
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
        out, batch = self.global_batch(out, batch)  # DDP: every rank's rows
        f, m, idx = out["feat"].float(), batch["modality"], batch["index"]
        pool = out["pool"].float()
        view2 = second_view_rows(idx, m)
        a = {k: v[idx] for k, v in self._arrays.items()}
        self._last = (f.detach(), pool.detach(), m, view2, a)
        parts: dict[str, torch.Tensor] = {}
        loss = f.new_zeros(())
        if self.classifier is not None and (a["cls"] >= 0).any():
            parts["id"] = self._soft_id(f, a)
            if self.epoch < c.id_warmup_epochs:  # the code's warm-up: the CE alone
                return {"loss": c.lambda_id * parts["id"], "id": parts["id"].detach()}
            loss = loss + c.lambda_id * parts["id"]
        if c.lambda_cmc:  # L_CMC = L_V + L_R + L_VR
            cmc = modality_nce(self.memories, f, m, a["intra"], VIS, IR)
            if "vr" in self.memories and (a["joint"] >= 0).any():
                cmc["nce_joint"] = self._joint_nce(f, m, a["joint"])
            parts.update(cmc)
            loss = loss + c.lambda_cmc * sum(cmc.values(), f.new_zeros(()))
        matched = self.v2r is not None
        if c.lambda_cross and matched and (a["partner"] >= 0).any():
            parts["cross"] = self._cross(f, m, a)
            loss = loss + c.lambda_cross * parts["cross"]
        if c.lambda_triplet and matched and (a["unified"] >= 0).sum() > 1:
            ok = a["unified"] >= 0
            parts["triplet"] = batch_hard_triplet(pool[ok], a["unified"][ok], c.triplet_margin)
            loss = loss + c.lambda_triplet * parts["triplet"]
        if c.lambda_intra and self.epoch + 1 >= c.intra_start_epoch:
            intra = (
                self._intra_l1(pool, m, view2, a) if c.intra_loss == "l1" else self._intra(f, m, a)
            )
            if intra is not None:
                parts["intra"] = intra
                loss = loss + c.lambda_intra * intra
        if c.lambda_inter and matched and self.epoch + 1 >= c.inter_start_epoch:
            feats = pool if c.inter_feature == "pool" else f
            parts["inter"] = inter_modality_mmd(feats, a["unified"], m == IR, view2, c.inter_form)
            loss = loss + c.lambda_inter * parts["inter"]
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}

    def _joint_nce(self, f, m, y) -> torch.Tensor:
        """L_VR: one mean over the batch's joint-clustered rows (``joint_reduce: pooled``),
        or the official code's L_all(IR) + L_all(RGB), a mean per modality summed
        (``per_modality``, trainers.py): about twice the scale, and the visible rows' two
        views no longer outweigh the infrared rows."""
        sel = y >= 0
        if self.cfg.joint_reduce == "pooled":
            return self.memories["vr"](f[sel], y[sel])
        parts = [sel & (m == mod) for mod in (VIS, IR)]
        return sum(self.memories["vr"](f[s], y[s]) for s in parts if s.any())

    def _soft_id(self, f, a) -> torch.Tensor:
        """The official stage B's soft-ID CE (``main.py``, ``--loss1 sid``): each sample's
        CE over the shared classifier times its GMM confidence, summed and divided by the
        batch; the plain mean CE in the warm-up epochs."""
        ok = a["cls"] >= 0
        ce = F.cross_entropy(self.classifier(f[ok]), a["cls"][ok], reduction="none")
        if self.epoch < self.cfg.id_warmup_epochs:
            return ce.mean()
        return (ce * a["conf"][ok]).sum() / ok.sum()

    def _cross(self, f, m, a) -> torch.Tensor:
        """½[NCE(f_v, M_R, partner) + NCE(f_r, M_V, partner)] over the samples whose
        cluster is matched (a side without any is left out of the mean)."""
        terms = []
        for mod, key in ((VIS, "r"), (IR, "v")):
            sel = (m == mod) & (a["partner"] >= 0)
            if sel.any():
                terms.append(self.memories[key](f[sel], a["partner"][sel]))
        return torch.stack(terms).mean()

    def _intra(self, f, m, a) -> torch.Tensor:
        fn = F.normalize(f, dim=1)
        ok = a["intra"] >= 0
        if not ok.any():
            return f.new_zeros(())
        centre = torch.empty_like(fn)
        for mod in (VIS, IR):
            sel = ok & (m == mod)
            centre[sel] = self._centres[mod][a["intra"][sel]]
        return (fn[ok] - centre[ok]).pow(2).sum(1).mean()

    def _intra_l1(self, pool, m, view2, a) -> torch.Tensor | None:
        """The official code's self-mimic term: confidence × L1 (mean over dimensions) of
        the pre-BN feature to its label's prototype of the previous epoch; the visible term
        (both views) plus the infrared term. None until prototypes exist. Prototypes are
        indexed by the unified label (the code's ``label1`` after matching), so visible
        clusters merged into one infrared identity share one prototype."""
        slot = torch.where(m == IR, 2, view2.long())
        y = a["unified"]
        ok = y >= 0
        ok[ok.clone()] = self.protos.valid[slot[ok], y[ok]]
        if not ok.any():
            return None
        target = self.protos.ready[slot[ok], y[ok]]
        per = (pool[ok] - target).abs().mean(1) * a["conf"][ok]
        is_ir = m[ok] == IR
        return sum(per[s].mean() for s in (~is_ir, is_ir) if s.any())

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        if self._last is None:
            return
        f, pool, m, view2, a = self._last
        # no `if sel.any()`: every rank runs every update (ClusterMemory.update, DDP)
        for mod, key in ((VIS, "v"), (IR, "r")):
            sel = (m == mod) & (a["intra"] >= 0)
            self.memories[key].update(f[sel], a["intra"][sel], a["conf"][sel])
        sel = a["joint"] >= 0
        if "vr" in self.memories:
            self.memories["vr"].update(f[sel], a["joint"][sel])
        if self.protos is not None:
            slot = torch.where(m == IR, 2, view2.long())
            self.protos.add(slot, pool, a["unified"], a["conf"])
        self._last = None


@METHODS.register("mmm")
def build_mmm(cfg, model) -> MMM:
    return MMM(model, cfg)
