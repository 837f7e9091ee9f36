"""The pseudo-label step of unsupervised training, run at the start of every epoch:
extract clustering features → k-reciprocal Jaccard → DBSCAN, per modality → cluster
quality against the dataset's identities (diagnostic only) → the method rebuilds its
memories → new samplers and loaders.

Rank 0 clusters and broadcasts the labels, so every rank trains on the same clusters.
Degenerate clusterings never crash: a modality without any cluster skips the epoch with a
warning (the previous epoch's weights are kept).

Offline labels (MMM's official stage B): ``offline(featurize)`` clusters once, before
training, on another network's features (a stage-A checkpoint); the method freezes them.
"""

from __future__ import annotations

import time
from dataclasses import replace

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
        self._offline_extras: dict = {}  # diagnostics of ``offline`` for the first epoch
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

    def _new_clusters(self, epoch: int, feats: dict, extras: dict) -> dict | None:
        """Cluster ``feats``, log their quality, hand them to the method. None (and a
        warning) when a modality has no cluster."""
        labels = self._cluster(feats)
        pids = {m: np.array([x.pid for x in s.samples]) for m, s in self.streams.items()}
        for m, tag in ((VIS, "visible"), (IR, "infrared")):
            q = cluster_quality(labels[m], pids[m])
            extras.update({f"{tag}_{k}": v for k, v in q.items() if k != "true_ids"})
        empty = [
            tag for m, tag in ((VIS, "visible"), (IR, "infrared")) if num_clusters(labels[m]) == 0
        ]
        if empty:
            log.warning(
                "epoch %d: no %s cluster (all samples are outliers); skipping the epoch's training",
                epoch + 1,
                " or ".join(empty),
            )
            return None
        extras.update(self.method.on_clusters(epoch, feats, labels))
        # correspondence quality of every association the method offers (diagnostic only)
        # (``cross_ARI_all``: outliers counted as one cluster, MMM's paper/code figure)
        for key, v2i in (self.method.cross_labels() or {}).items():
            tail = "" if key == "matched" else f"_{key}"
            for name, outliers in (("cross_ARI", False), ("cross_ARI_all", True)):
                ari = cross_modality_ari(labels, pids, v2i, outliers)
                if ari is not None:
                    extras[name + tail] = ari
        return labels

    def offline(self, featurize) -> None:
        """Cluster once, before training, on the features ``featurize`` gives (a stage-A
        network), and hand the clusters to the method, which must freeze them. Their
        diagnostics join the first epoch's metrics."""
        feats = {m: featurize(s.samples, s.images) for m, s in self.streams.items()}
        if self._new_clusters(0, feats, self._offline_extras) is None or not getattr(
            self.method, "freeze_labels", False
        ):
            raise RuntimeError(
                "offline pseudo-labels: the stage-A features gave no clusters in a modality, "
                "or the method did not freeze them (MMM: schedule: once, match_start_epoch: 1)"
            )

    def before_epoch(self, trainer) -> None:
        trainer.epoch_extras.update(self._offline_extras)
        self._offline_extras = {}
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
        labels = self._new_clusters(trainer.epoch, feats, trainer.epoch_extras)
        if labels is None:
            trainer.skip_epoch = True
            return
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
        opts = self.opts
        if opts.iters is None:  # one pass over the data
            opts = replace(opts, iters=self._one_pass(labels, shared))
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
                opts,
            )
        else:
            p = {VIS: b.num_ids, IR: b.num_ids_infrared or b.num_ids}
            trainer.loader = paired_loader(self.streams, p, b.num_instances, opts)

    def _one_pass(self, labels: dict[int, np.ndarray], shared: int) -> int:
        """Batches per epoch for ``train.iters_per_epoch: null``. Cross-modality batches:
        N / (P·K) + 1 with N the larger modality's count of labelled samples (MMM's
        official ``IdentitySampler``); per-modality batches: the infrared images over
        the infrared batch."""
        b = self.b
        if shared:
            lab = self.method.sampling_labels
            n = max(int((lab[m] >= 0).sum()) for m in (VIS, IR))
            return n // (min(b.num_ids, shared) * b.num_instances) + 1
        per_batch = (b.num_ids_infrared or b.num_ids) * b.num_instances
        return max(1, len(self.streams[IR].samples) // per_batch)
