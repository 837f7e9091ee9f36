"""Training data for unsupervised VI-ReID: one visible and one infrared stream, each
sampled by pseudo-label (P clusters × K instances, other cameras first), zipped into one
batch per iteration (the two-loader loop of ADCA/PGM/MMM)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .loader import ImageDataset, make_loader
from .records import Modality, Sample
from .samplers import PseudoLabelSampler


@dataclass
class ModalityStream:
    """All training images of one modality with their current pseudo-labels."""

    modality: Modality
    samples: list[Sample]
    transforms: dict
    images: np.ndarray | None = None
    labels: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = np.full(len(self.samples), -1, np.int64)

    def loader(
        self,
        num_ids: int,
        num_instances: int,
        iters: int,
        seed: int,
        workers: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        ds = ImageDataset(self.samples, self.transforms, self.labels.tolist(), self.images)
        sampler = PseudoLabelSampler(
            self.labels,
            [s.camid for s in self.samples],
            num_ids,
            num_instances,
            iters,
            seed,
            rank,
            world_size,
        )
        return make_loader(
            ds,
            batch_sampler=sampler,
            workers=workers,
            generator=torch.Generator().manual_seed(seed),
        )


class PairedLoader:
    """Yields ``iters`` batches, each the concatenation of one visible and one infrared
    batch (visible first). ``set_epoch`` reseeds both samplers."""

    def __init__(self, visible, infrared) -> None:
        self.visible, self.infrared = visible, infrared

    def set_epoch(self, epoch: int) -> None:
        for ld in (self.visible, self.infrared):
            ld.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return min(len(self.visible), len(self.infrared))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for v, i in zip(self.visible, self.infrared, strict=False):
            yield {k: torch.cat([v[k], i[k]]) for k in v}
