"""The pseudo-label step of unsupervised training, run at the start of every epoch:
extract clustering features → k-reciprocal Jaccard → DBSCAN, per modality → cluster
quality against the dataset's identities (diagnostic only) → the method rebuilds its
memories → new samplers and loaders.

Rank 0 clusters and broadcasts the labels, so every rank trains on the same clusters.
Degenerate clusterings never crash: a modality without any cluster skips the epoch with a
warning (the previous epoch's weights are kept).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ..clustering import cluster_quality, dbscan, jaccard_distance, num_clusters
from ..clustering.dbscan import relabel_contiguous
from ..data.usl import ModalityStream, PairedLoader
from ..utils.logging import get_logger
from .distributed import DistInfo, broadcast_object
from .hooks import Hook

log = get_logger(__name__)
VIS, IR = 0, 1


def cluster_features(
    feats: np.ndarray, k1: int, k2: int, eps: float, min_samples: int, knn_backend: str = "auto"
) -> np.ndarray:
    """Contiguous pseudo-labels (−1 = outlier) of one modality's features."""
    if len(feats) < 2:
        return np.full(len(feats), -1, np.int64)
    dist = jaccard_distance(feats, k1, k2, max_distance=eps, knn_backend=knn_backend)
    return relabel_contiguous(dbscan(dist, eps, min_samples))


def cross_modality_ari(labels: dict, pids: dict, v2i: np.ndarray | None) -> float | None:
    """ARI of the joint labelling (visible clusters renamed to their infrared partner)
    against the true identities, over clustered samples of both modalities."""
    if v2i is None:
        return None
    lv, li = labels[VIS], labels[IR]
    joint_v = np.where(lv >= 0, v2i[np.maximum(lv, 0)], -1)
    lab = np.concatenate([joint_v, li])
    true = np.concatenate([pids[VIS], pids[IR]])
    m = lab >= 0
    return float(adjusted_rand_score(true[m], lab[m])) if m.sum() > 1 else None


class PseudoLabelHook(Hook):
    def __init__(
        self,
        method,
        streams: dict[int, ModalityStream],
        featurize,
        cluster_cfg,
        batch_cfg,
        iters: int,
        seed: int,
        workers: int,
        info: DistInfo,
    ) -> None:
        self.method, self.streams, self.featurize = method, streams, featurize
        self.c, self.b = cluster_cfg, batch_cfg
        self.iters, self.seed, self.workers, self.info = iters, seed, workers, info

    def before_epoch(self, trainer) -> None:
        feats = {m: self.featurize(s.samples) for m, s in self.streams.items()}
        labels = None
        if self.info.is_main:
            labels = {
                m: cluster_features(
                    f, self.c.k1, self.c.k2, self.c.eps, self.c.min_samples, self.c.knn_backend
                )
                for m, f in feats.items()
            }
        labels = broadcast_object(labels)
        pids = {m: np.array([x.pid for x in s.samples]) for m, s in self.streams.items()}
        extras = {}
        for m, tag in ((VIS, "visible"), (IR, "infrared")):
            q = cluster_quality(labels[m], pids[m])
            extras.update({f"{tag}_{k}": v for k, v in q.items() if k != "true_ids"})
        trainer.epoch_extras.update(extras)
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
        ari = cross_modality_ari(labels, pids, (self.method.cross_labels() or {}).get(VIS))
        if ari is not None:
            trainer.epoch_extras["cross_ARI"] = ari
        loaders = {}
        for m, stream in self.streams.items():
            stream.labels = labels[m]
            p = (
                self.b.num_ids
                if m == VIS or self.b.num_ids_infrared is None
                else self.b.num_ids_infrared
            )
            loaders[m] = stream.loader(
                p,
                self.b.num_instances,
                self.iters,
                self.seed + 7919 * m,
                self.workers,
                self.info.rank,
                self.info.world_size,
            )
        trainer.loader = PairedLoader(loaders[VIS], loaders[IR])
