"""torch.distributed helpers: init from torchrun's environment, ordered feature gathering.

Evaluation shards the image list over ranks as ``indices[rank::world]`` padded to equal
length; ``gather_ordered`` all-gathers the shards and interleaves them back into the
original order, dropping the padding, so every rank sees exactly the single-process
features.
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
