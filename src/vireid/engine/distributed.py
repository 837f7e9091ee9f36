"""torch.distributed helpers: init from torchrun's environment, ordered feature gathering,
and the global training batch.

Evaluation shards the image list over ranks as ``indices[rank::world]`` padded to equal
length; ``gather_ordered`` all-gathers the shards and interleaves them back into the
original order, dropping the padding, so every rank sees exactly the single-process
features.

Training (``set_global_batch``): each rank forwards its share of the recipe's batch
(``data.samplers``), and methods gather every rank's rows (``gather_rows``, differentiable)
before computing their losses, so each rank computes the single-process loss of the whole
batch: hard mining and softmax weights over all identities, memory updates from all rows
in batch order. Its backward sums every rank's gradient into the rows' owner; DDP then
averages over the W ranks, which makes the weights' gradient exactly the one-process
gradient (each rank's rows receive W × their share; parameters used directly by a loss
receive the full gradient on each rank and W/W of it after the average).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def close_distributed(info: DistInfo, wait: bool = True) -> None:
    """Leave the process group. ``wait``: first let every rank arrive (rank 0 may still be
    writing results), so no rank tears down its communication threads while another is
    still using them; a rank that exits with a live gloo group can die in C++ at exit."""
    if not (info.enabled and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def shard_indices(n: int, rank: int, world: int) -> list[int]:
    """This rank's indices, padded by repeating the last so every rank has ceil(n/world)."""
    per = -(-n // world)
    idx = list(range(rank, n, world))
    return idx + [idx[-1] if idx else 0] * (per - len(idx))


def gather_ordered(local: torch.Tensor, n: int, world: int) -> torch.Tensor:
    """Inverse of ``shard_indices``: (per, D) from each rank → (n, D) in original order."""
    if world == 1:
        return local[:n]
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local.contiguous())
    stacked = torch.stack(parts, dim=1)  # (per, world, D): row i*world + r = index
    return stacked.reshape(-1, *local.shape[1:])[:n]


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Ranks of the running process group; 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def broadcast_object(obj, src: int = 0):
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


_GLOBAL_BATCH = False


def set_global_batch(on: bool) -> None:
    """Training batches are shared by the ranks and gathered by the methods (the engine
    turns this on for its DDP runs)."""
    global _GLOBAL_BATCH
    _GLOBAL_BATCH = on


def batch_is_global() -> bool:
    """True while a DDP run's methods gather every rank's rows (then memory updates must
    not gather them again)."""
    return _GLOBAL_BATCH and world_size() > 1


class _GatherRows(torch.autograd.Function):
    """All ranks' rows in rank order (unequal counts padded); backward: the sum of every
    rank's gradient of its copy, this rank's rows of it."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        n = torch.tensor([len(t)], device=t.device)
        sizes = [torch.empty_like(n) for _ in range(world)]
        dist.all_gather(sizes, n)
        rows = [int(x) for x in sizes]
        pad = t.new_zeros((max(rows) - len(t), *t.shape[1:]))
        parts = [t.new_empty((max(rows), *t.shape[1:])) for _ in range(world)]
        dist.all_gather(parts, torch.cat([t, pad]).contiguous())
        ctx.start, ctx.stop = sum(rows[:rank]), sum(rows[: rank + 1])
        return torch.cat([p[:k] for p, k in zip(parts, rows, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.start : ctx.stop]


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """(n_r, ...) on each rank → (Σ n_r, ...), rank 0's rows first; differentiable."""
    if world_size() == 1:
        return t
    return _GatherRows.apply(t)


def global_batch_order(row_key: torch.Tensor) -> torch.Tensor:
    """The permutation that puts gathered rows into the single-process batch order.
    ``row_key`` (local rows): 0 visible first views, 1 visible second views, 2 infrared,
    the order ``collate_views`` gives a batch; each rank's share holds its identities in
    every group, so a stable sort of the rank-major rows by group is the global batch."""
    return torch.argsort(gather_rows(row_key), stable=True)
