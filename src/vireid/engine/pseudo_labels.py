"""The pseudo-label step of unsupervised training, run at the start of every epoch:
extract clustering features → k-reciprocal Jaccard → DBSCAN, per modality → cluster
quality against the dataset's identities (diagnostic only) → the method rebuilds its
memories → new samplers and loaders.

Rank 0 clusters and broadcasts the labels, so every rank trains on the same clusters.
Degenerate clusterings never crash: a modality without any cluster skips the epoch with a
warning (the previous epoch's weights are kept).
"""

from __future__ import annotations

import time

import numpy as np

from ..clustering import cluster_labels, cluster_quality, cross_modality_ari, num_clusters
from ..clustering.pseudo_labels import build_ann
from ..data.samplers import TooFewIdentities
from ..data.usl import LoaderOpts, ModalityStream, cross_loader, paired_loader
from ..utils.logging import get_logger
from .distributed import DistInfo, broadcast_object
from .hooks import Hook

log = get_logger(__name__)
VIS, IR = 0, 1


class PseudoLabelHook(Hook):
    """Re-clusters at the start of every epoch and hands the method its new clusters.

    The method answers ``on_clusters(epoch, feats, labels) -> extras`` and may set
    ``sampling = "cross"`` with ``sampling_labels`` (labels linking the modalities), in
    which case batches hold P identities × (K visible + K infrared); otherwise each modality
    is sampled by its own clusters. ``method.freeze_labels`` (offline pseudo-labels) stops
    re-clustering once labels exist.
    """

    def __init__(
        self,
        method,
        streams: dict[int, ModalityStream],
        featurize,
        cluster_cfg,
        batch_cfg,
        loader_opts: LoaderOpts,
        info: DistInfo,
    ) -> None:
        self.method, self.streams, self.featurize = method, streams, featurize
        self.c, self.b = cluster_cfg, batch_cfg
        self.opts, self.info = loader_opts, info
        if hasattr(method, "set_samples"):  # methods that read cameras (ECUL's EMCC)
            method.set_samples({m: s.samples for m, s in streams.items()})

    def _cluster(self, feats) -> dict[int, np.ndarray]:
        labels = None
        if self.info.is_main:
            labels = {
                m: cluster_labels(
                    f,
                    self.c.k1,
                    self.c.k2,
                    self.c.eps,
                    self.c.min_samples,
                    self.c.knn_backend,
                    device=self.c.device,
                    ann=build_ann(self.c),
                )
                for m, f in feats.items()
            }
        return broadcast_object(labels)

    def before_epoch(self, trainer) -> None:
        t0 = time.perf_counter()
        self._update(trainer)
        # the step's cost in the metrics row (smoke runs project a recipe's time from it)
        trainer.epoch_extras["pseudo_label_seconds"] = time.perf_counter() - t0

    def _update(self, trainer) -> None:
        if getattr(self.method, "freeze_labels", False):
            # offline pseudo-labels: computed once, kept for the whole run; a resumed run
            # finds them restored from the checkpoint by the method. A method with
            # ``refresh(epoch, feats)`` still re-derives what depends on the features (MMM:
            # GMM confidences and centres, refitted every epoch as its official code does)
            if hasattr(self.method, "refresh"):
                feats = {m: self.featurize(s.samples, s.images) for m, s in self.streams.items()}
                trainer.epoch_extras.update(self.method.refresh(trainer.epoch, feats))
            if trainer.loader is None:
                self._build_loader(trainer, self.method.frozen["labels"])
            return
        feats = {m: self.featurize(s.samples, s.images) for m, s in self.streams.items()}
        labels = self._cluster(feats)
        pids = {m: np.array([x.pid for x in s.samples]) for m, s in self.streams.items()}
        for m, tag in ((VIS, "visible"), (IR, "infrared")):
            q = cluster_quality(labels[m], pids[m])
            trainer.epoch_extras.update({f"{tag}_{k}": v for k, v in q.items() if k != "true_ids"})
        empty = [
            tag for m, tag in ((VIS, "visible"), (IR, "infrared")) if num_clusters(labels[m]) == 0
        ]
        if empty:
            log.warning(
                "epoch %d: no %s cluster (all samples are outliers); skipping the epoch's training",
                trainer.epoch + 1,
                " or ".join(empty),
            )
            trainer.skip_epoch = True
            return
        trainer.epoch_extras.update(self.method.on_clusters(trainer.epoch, feats, labels))
        # correspondence quality of every association the method offers (diagnostic only)
        # (``cross_ARI_all``: outliers counted as one cluster, MMM's paper/code figure)
        for key, v2i in (self.method.cross_labels() or {}).items():
            tail = "" if key == "matched" else f"_{key}"
            for name, outliers in (("cross_ARI", False), ("cross_ARI_all", True)):
                ari = cross_modality_ari(labels, pids, v2i, outliers)
                if ari is not None:
                    trainer.epoch_extras[name + tail] = ari
        self._build_loader(trainer, labels)

    def _build_loader(self, trainer, labels: dict[int, np.ndarray]) -> None:
        try:
            self._new_loader(trainer, labels)
        except TooFewIdentities as e:  # DDP: fewer clusters in a batch than processes
            log.warning("epoch %d: %s; skipping the epoch's training", trainer.epoch + 1, e)
            trainer.skip_epoch = True

    def _new_loader(self, trainer, labels: dict[int, np.ndarray]) -> None:
        for m, st in self.streams.items():
            st.labels = labels[m]
        b = self.b
        shared = 0
        if getattr(self.method, "sampling", "paired") == "cross":
            lab = self.method.sampling_labels
            shared = len(np.intersect1d(lab[VIS][lab[VIS] >= 0], lab[IR][lab[IR] >= 0]))
            if shared == 0:
                log.warning(
                    "epoch %d: no identity links the modalities; sampling each "
                    "modality by its own clusters",
                    trainer.epoch + 1,
                )
        if shared:
            if shared < b.num_ids:
                log.warning(
                    "epoch %d: only %d cross-modality identities; batches use %d instead of %d",
                    trainer.epoch + 1,
                    shared,
                    shared,
                    b.num_ids,
                )
            trainer.loader = cross_loader(
                self.streams,
                self.method.sampling_labels,
                min(b.num_ids, shared),
                b.num_instances,
                self.opts,
            )
        else:
            p = {VIS: b.num_ids, IR: b.num_ids_infrared or b.num_ids}
            trainer.loader = paired_loader(self.streams, p, b.num_instances, self.opts)
