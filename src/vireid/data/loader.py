"""Datasets over ``Sample`` lists and the loaders built from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .cache import load_rgb
from .records import Modality, Sample

MODALITY_INDEX = {Modality.VISIBLE: 0, Modality.INFRARED: 1}
"""Tensor encoding of ``Modality`` inside batches (tensors cannot hold enums)."""


class ImageDataset(Dataset):
    """Images of ``samples`` with their labels.

    ``images``: optional (N, H, W, 3) uint8 array (the decoded cache), or a sequence of
    RGB PIL images (in-memory inputs), used instead of the files. ``transforms``: one
    transform, or a dict with ``visible``, ``visible2`` (second visible view or None) and
    ``infrared``. ``corrupt``: optional ``(sample, image) -> image`` applied to the decoded
    image before the transforms (robustness evaluation,
    ``vireid.evaluation.corruption.Corruptor``). Items: (views, label, camid, modality, index)
    where ``views`` is a list of one or two (3, H, W) tensors.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transforms,
        labels: Sequence[int] | None = None,
        images: np.ndarray | None = None,
        index_offset: int = 0,
        image_index: Sequence[int] | None = None,
        corrupt: Callable[[Sample, object], np.ndarray] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.corrupt = corrupt
        # row of ``images`` holding sample i (a shard reads the full cache without copying)
        self.image_index = image_index
        self.index_offset = index_offset  # reported index = offset + position (concatenations)
        self.labels = list(labels) if labels is not None else [s.pid for s in self.samples]
        self.images = images
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.samples)

    def _pick(self, s: Sample) -> list:
        t = self.transforms
        if not isinstance(t, dict):
            return [t]
        if s.modality is Modality.INFRARED:
            return [t["infrared"]]
        return [t["visible"]] + ([t["visible2"]] if t.get("visible2") is not None else [])

    def __getitem__(self, i: int):
        s = self.samples[i]
        row = i if self.image_index is None else self.image_index[i]
        img = load_rgb(s.path) if self.images is None else self.images[row]
        if isinstance(img, np.ndarray):  # out of the read-only memory map: transforms may
            img = np.array(img)  # write in place; PIL images take the files' decode route
        if self.corrupt is not None:
            img = self.corrupt(s, img)
        views = [tf(img) for tf in self._pick(s)]
        return views, self.labels[i], s.camid, MODALITY_INDEX[s.modality], i + self.index_offset


def collate_views(batch) -> dict[str, torch.Tensor]:
    """Stack a batch. With second views present the rows are CAJ's layout: visible first
    views, visible second views, infrared (``cat(label1, label1, label2)``); otherwise the
    batch order is kept (feature extraction relies on it)."""
    rows = [(b[0][0], *b[1:]) for b in batch]
    if any(len(b[0]) > 1 for b in batch):
        vis = [b for b in batch if b[3] == 0]
        rows = (
            [(b[0][0], *b[1:]) for b in vis]
            + [(b[0][1], *b[1:]) for b in vis if len(b[0]) > 1]
            + [(b[0][0], *b[1:]) for b in batch if b[3] == 1]
        )
    second = [0] * len(rows)
    if len(rows) > len(batch):  # CAJ's layout: the second views follow the first views
        n_vis = sum(b[3] == 0 for b in batch)
        second[n_vis : n_vis + len(rows) - len(batch)] = [1] * (len(rows) - len(batch))
    return {
        "images": torch.stack([r[0] for r in rows]),
        "labels": torch.tensor([r[1] for r in rows], dtype=torch.long),
        "camids": torch.tensor([r[2] for r in rows], dtype=torch.long),
        "modality": torch.tensor([r[3] for r in rows], dtype=torch.long),
        "index": torch.tensor([r[4] for r in rows], dtype=torch.long),
        # 1 for second views (DDP restores the single-process row order from it)
        "view": torch.tensor(second, dtype=torch.long),
    }


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)


class EpochLoader(DataLoader):
    """A training loader whose randomness is a function of (seed, epoch) only.

    ``set_epoch`` reseeds the batch sampler and the loader's own generator (it draws the
    workers' base seed), so epoch e gives the same batches and augmentations whether the
    loader object has run e − 1 epochs before or was rebuilt after a resume. ``rank``
    keeps DDP ranks' augmentation streams apart."""

    def __init__(self, dataset, *, seed: int, rank: int = 0, **kwargs) -> None:
        super().__init__(dataset, generator=torch.Generator().manual_seed(seed), **kwargs)
        self.seed, self.rank = seed, rank

    def set_epoch(self, epoch: int) -> None:
        key = [self.seed, self.rank, epoch]
        mixed = np.random.SeedSequence(key).generate_state(1, np.uint64)[0]
        self.generator.manual_seed(int(mixed))
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)


def make_loader(
    dataset: Dataset,
    *,
    batch_sampler=None,
    batch_size: int = 64,
    workers: int = 0,
    seed: int | None = None,
    rank: int = 0,
) -> DataLoader:
    """A training loader (``EpochLoader``) when ``seed`` is given, else a plain one."""
    kwargs = dict(
        num_workers=workers,
        collate_fn=collate_views,
        worker_init_fn=_seed_worker,
        persistent_workers=False,
    )
    if workers:
        kwargs["prefetch_factor"] = 4
    if batch_sampler is not None:
        if seed is not None:
            return EpochLoader(dataset, seed=seed, rank=rank, batch_sampler=batch_sampler, **kwargs)
        return DataLoader(dataset, batch_sampler=batch_sampler, **kwargs)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, **kwargs)
