"""Batch samplers.

* ``CrossModalitySampler`` (AGW/CAJ ``IdentitySampler``): each batch holds P identities ×
  K visible + the same P identities × K infrared images.
* ``PseudoLabelSampler`` (Cluster-Contrast ``RandomMultipleGallerySampler``): P clusters ×
  K instances, the instances after the first preferably from other cameras.

Both are batch samplers yielding lists of dataset indices. Batches are generated from
``seed + epoch`` identically on every rank; rank r keeps batches r, r + world, … so ranks
never overlap (the distributed variant is the same class with ``rank``/``world_size``), and
the count is padded to a multiple of the world size so all ranks take equally many steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np

from .records import Modality


def _pick(rng: np.random.Generator, pool: Sequence[int], k: int) -> list[int]:
    """k distinct indices when the pool is large enough, else with replacement."""
    pool = np.asarray(pool)
    return rng.choice(pool, k, replace=len(pool) < k).tolist()


class _EpochBatches:
    def __init__(self, num_batches: int, seed: int, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        self.num_batches = num_batches
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def total_batches(self) -> int:
        """Batches generated per epoch: rounded up to a multiple of the world size, so every
        rank runs the same number of steps (DDP's collectives would hang otherwise)."""
        return -(-self.num_batches // self.world_size) * self.world_size

    def __len__(self) -> int:
        return self.total_batches // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for b in range(self.total_batches):
            batch = self._batch(rng)
            if b % self.world_size == self.rank:
                yield batch

    def _batch(self, rng: np.random.Generator) -> list[int]:  # pragma: no cover - abstract
        raise TypeError("subclass must implement _batch")


class CrossModalitySampler(_EpochBatches):
    """P identities × (K visible + K infrared) per batch; the visible block comes first,
    identity order identical in both blocks (so labels line up as in AGW)."""

    def __init__(
        self,
        labels: Sequence[int],
        modalities: Sequence[Modality],
        num_ids: int,
        num_instances: int,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        by = {m: defaultdict(list) for m in Modality}
        for i, (y, m) in enumerate(zip(labels, modalities, strict=True)):
            if y >= 0:  # −1: an outlier / unmatched sample, never drawn
                by[m][int(y)].append(i)
        self.vis, self.ir = by[Modality.VISIBLE], by[Modality.INFRARED]
        self.ids = sorted(set(self.vis) & set(self.ir))
        if len(self.ids) < num_ids:
            raise ValueError(
                f"{len(self.ids)} identities have both modalities; a batch needs num_ids={num_ids}"
            )
        self.P, self.K = num_ids, num_instances
        if num_batches is None:  # roughly one pass over the larger modality
            n = max(sum(map(len, self.vis.values())), sum(map(len, self.ir.values())))
            num_batches = max(1, n // (self.P * self.K))
        super().__init__(num_batches, seed, rank, world_size)

    def _batch(self, rng):
        ids = rng.choice(self.ids, self.P, replace=False)
        vis = [i for y in ids for i in _pick(rng, self.vis[y], self.K)]
        ir = [i for y in ids for i in _pick(rng, self.ir[y], self.K)]
        return vis + ir


class PseudoLabelSampler(_EpochBatches):
    """P pseudo-identities × K instances; label −1 (outliers) is never sampled."""

    def __init__(
        self,
        labels: Sequence[int],
        camids: Sequence[int],
        num_ids: int,
        num_instances: int,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.index = defaultdict(list)
        self.camids = np.asarray(camids)
        for i, y in enumerate(labels):
            if y >= 0:
                self.index[int(y)].append(i)
        self.ids = sorted(self.index)
        if not self.ids:
            raise ValueError("PseudoLabelSampler: every sample is an outlier (label -1)")
        self.P, self.K = min(num_ids, len(self.ids)), num_instances
        if num_batches is None:
            num_batches = max(1, sum(map(len, self.index.values())) // (self.P * self.K))
        super().__init__(num_batches, seed, rank, world_size)

    def _instances(self, rng, pool: list[int]) -> list[int]:
        first = int(rng.choice(pool))
        others = [i for i in pool if i != first]
        other_cam = [i for i in others if self.camids[i] != self.camids[first]]
        same_cam = [i for i in others if self.camids[i] == self.camids[first]]
        picked = [first]
        # other cameras first, then the same camera, then repeats
        for group in (other_cam, same_cam):
            need = self.K - len(picked)
            if need <= 0 or not group:
                continue
            picked += rng.permutation(group)[:need].tolist()
        if len(picked) < self.K:
            picked += _pick(rng, pool, self.K - len(picked))
        return picked

    def _batch(self, rng):
        ids = rng.choice(self.ids, self.P, replace=False)
        return [i for y in ids for i in self._instances(rng, self.index[y])]
