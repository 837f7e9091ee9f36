"""Batch samplers.

* ``CrossModalitySampler`` (AGW/CAJ ``IdentitySampler``): each batch holds P identities ×
  K visible + the same P identities × K infrared images.
* ``PseudoLabelSampler`` (Cluster-Contrast ``RandomMultipleGallerySampler``): P clusters ×
  K instances, the instances after the first preferably from other cameras.

Both are batch samplers yielding lists of dataset indices. Batches are generated from
``seed + epoch`` identically on every rank. Under DDP (``rank``/``world_size``) the
recipe's batch is the *global* batch: every rank takes every batch, and from it a
contiguous share of its identities (rank r of W: identities ⌊rP/W⌋ … ⌊(r+1)P/W⌋ − 1 of the
P, with all their instances in every block), so N processes train on exactly the batches,
and as many steps, as one; ``engine.distributed.gather_rows`` puts the shares back together
in the single-process order for the losses. One process draws exactly what it always did.
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


class TooFewIdentities(ValueError):
    """A batch has fewer identities than DDP processes to share them."""


class _EpochBatches:
    P: int  # identities per batch (set by the subclass before ``super().__init__``)

    def __init__(self, num_batches: int, seed: int, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        if world_size > self.P:
            raise TooFewIdentities(
                f"a batch of {self.P} identities cannot be shared by {world_size} processes: "
                "each needs at least one (raise data.batch.num_ids or lower --nproc)"
            )
        self.num_batches = num_batches
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        # this rank's contiguous share of the P identities of every batch
        self.share = slice(rank * self.P // world_size, (rank + 1) * self.P // world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches  # every rank takes every (global) batch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.num_batches):
            blocks = self._blocks(rng)
            if self.world_size > 1:
                blocks = [block[self.share] for block in blocks]
            yield [i for block in blocks for group in block for i in group]

    def _blocks(self, rng: np.random.Generator) -> list[list[list[int]]]:  # pragma: no cover
        """One batch: blocks (e.g. visible, infrared) of P per-identity index groups."""
        raise TypeError("subclass must implement _blocks")


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

    def _blocks(self, rng):
        ids = rng.choice(self.ids, self.P, replace=False)
        vis = [_pick(rng, self.vis[y], self.K) for y in ids]
        ir = [_pick(rng, self.ir[y], self.K) for y in ids]
        return [vis, ir]


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

    def _blocks(self, rng):
        ids = rng.choice(self.ids, self.P, replace=False)
        return [[self._instances(rng, self.index[y]) for y in ids]]
