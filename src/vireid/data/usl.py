"""Training data for unsupervised VI-ReID: one stream of images per modality, with the
current pseudo-labels. Two ways to batch them:

* ``paired_loader``: per modality P clusters × K instances (other cameras first), one
  visible and one infrared batch zipped per iteration (ADCA/PGM's two loaders);
* ``cross_loader``: P cross-modality identities × (K visible + K infrared), for methods
  whose labels already link the modalities (MMM after matching).

Batch indices are global: visible samples first, then infrared (``offset``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import ConcatDataset

from .loader import ImageDataset, make_loader
from .records import Modality, Sample
from .samplers import CrossModalitySampler, PseudoLabelSampler


@dataclass
class ModalityStream:
    """All training images of one modality with their current pseudo-labels."""

    modality: Modality
    samples: list[Sample]
    transforms: dict
    images: np.ndarray | None = None
    offset: int = 0
    labels: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = np.full(len(self.samples), -1, np.int64)

    def dataset(self, labels: np.ndarray | None = None) -> ImageDataset:
        lab = self.labels if labels is None else labels
        return ImageDataset(
            self.samples, self.transforms, lab.tolist(), self.images, index_offset=self.offset
        )


@dataclass(frozen=True)
class LoaderOpts:
    """What every training loader of a run shares: batches per epoch, seed, worker
    processes and the DDP rank it serves."""

    iters: int | None  # None: the pseudo-label hook sizes one pass over the labels
    seed: int
    workers: int = 0
    rank: int = 0
    world_size: int = 1


def _loader(dataset, sampler, seed: int, o: LoaderOpts):
    return make_loader(dataset, batch_sampler=sampler, workers=o.workers, seed=seed, rank=o.rank)


def paired_loader(streams: dict, num_ids: dict, num_instances: int, o: LoaderOpts) -> PairedLoader:
    loaders = {}
    for m, st in streams.items():
        cams = [s.camid for s in st.samples]
        sampler = PseudoLabelSampler(
            st.labels,
            cams,
            num_ids[m],
            num_instances,
            o.iters,
            o.seed + 7919 * m,
            o.rank,
            o.world_size,
        )
        loaders[m] = _loader(st.dataset(), sampler, o.seed + m, o)
    return PairedLoader(loaders[0], loaders[1])


def cross_loader(streams: dict, labels: dict, num_ids: int, num_instances: int, o: LoaderOpts):
    order = sorted(streams)
    ds = ConcatDataset([streams[m].dataset(labels[m]) for m in order])
    all_labels = np.concatenate([labels[m] for m in order])
    mods = [streams[m].modality for m in order for _ in streams[m].samples]
    sampler = CrossModalitySampler(
        all_labels, mods, num_ids, num_instances, o.iters, o.seed, o.rank, o.world_size
    )
    return _loader(ds, sampler, o.seed, o)


class PairedLoader:
    """Yields one batch per iteration: a visible batch concatenated with an infrared batch
    (visible first). ``set_epoch`` reseeds both loaders."""

    def __init__(self, visible, infrared) -> None:
        self.visible, self.infrared = visible, infrared

    def set_epoch(self, epoch: int) -> None:
        for ld in (self.visible, self.infrared):
            ld.set_epoch(epoch)

    def __len__(self) -> int:
        return min(len(self.visible), len(self.infrared))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for v, i in zip(self.visible, self.infrared, strict=False):
            yield {k: torch.cat([v[k], i[k]]) for k in v}
