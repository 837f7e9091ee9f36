"""Cluster memory and the ClusterNCE loss (Cluster-Contrast, Dai et al. 2022;
alibaba/cluster-contrast-reid ``models/cm.py``), with the memory update made an explicit
step after the optimiser (the community hides it inside ``backward``).

The memory holds one L2-normalised vector per cluster. Each epoch it is reset to the
normalised cluster centroids; after every optimiser step ``update`` moves the entries of
the batch's clusters towards their samples:

* ``mean``: for every sample in batch order, M[y] ← normalise(m·M[y] + (1−m)·x) — the
  community's sequential per-sample update. Vectorised exactly by applying the r-th
  occurrence of every label in round r.
* ``hard``: per cluster, only the least similar sample of the batch (CM_Hard).

Under DDP, ``update`` all-gathers features and labels first so every rank applies the
same update, unless the training batch is already global (``engine.distributed``: the
method gathered every rank's rows, in batch order, before its losses).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..engine.distributed import batch_is_global, world_size


def _gather(t: torch.Tensor) -> torch.Tensor:
    """All ranks' rows, in rank order. Ranks may hold different row counts (a method
    selects its clustered rows before updating), so rows are padded to the largest."""
    world = world_size()
    if world == 1 or batch_is_global():  # the method already gathered every rank's rows
        return t
    n = torch.tensor([len(t)], device=t.device)
    sizes = [torch.empty_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    rows = [int(x) for x in sizes]
    if max(rows) == 0:  # every rank agrees (same sizes): skip an all-gather of empty tensors
        return t
    pad = t.new_zeros((max(rows) - len(t), *t.shape[1:]))
    parts = [t.new_empty((max(rows), *t.shape[1:])) for _ in range(world)]
    dist.all_gather(parts, torch.cat([t, pad]).contiguous())
    return torch.cat([p[:k] for p, k in zip(parts, rows, strict=True)])


def occurrence_rounds(labels: torch.Tensor) -> torch.Tensor:
    """For each position, how many earlier positions carry the same label (0-based)."""
    n = len(labels)
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    start = torch.ones(n, dtype=torch.bool, device=labels.device)
    start[1:] = sorted_labels[1:] != sorted_labels[:-1]
    idx = torch.arange(n, device=labels.device)
    group_start = torch.cummax(torch.where(start, idx, torch.zeros_like(idx)), 0).values
    rounds = torch.empty_like(idx)
    rounds[order] = idx - group_start
    return rounds


class ClusterMemory(nn.Module):
    def __init__(
        self,
        dim: int,
        num_clusters: int,
        temp: float = 0.05,
        momentum: float = 0.1,
        mode: str = "mean",
    ) -> None:
        super().__init__()
        if mode not in ("mean", "hard"):
            raise ValueError(f"memory mode {mode!r}: expected 'mean' or 'hard'")
        self.temp, self.momentum, self.mode = temp, momentum, mode
        self.register_buffer("features", torch.zeros(num_clusters, dim))

    @property
    def num_clusters(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def reset(self, centroids: torch.Tensor) -> None:
        """New clusters: (C, D) centroids (normalised here)."""
        self.features = F.normalize(centroids.float(), dim=1).to(self.features.device)

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """ClusterNCE: CE(normalise(f) · Mᵀ / τ, y). ``feats`` (B, D), ``labels`` (B,)."""
        logits = F.normalize(feats, dim=1) @ self.features.T / self.temp
        return F.cross_entropy(logits, labels)

    @torch.no_grad()
    def update(
        self, feats: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
    ) -> None:
        """``weights`` (B,) in [0, 1] scale each sample's pull (MMM's confidence-weighted
        update); None = the plain update. Under DDP every rank must call this (and
        ``TwoStepMemory.update_with``) at the same point, with zero rows if it has none:
        the update all-gathers, so a rank that skips it leaves the others waiting."""
        x = _gather(F.normalize(feats.detach().float(), dim=1))
        y = _gather(labels)
        w = None if weights is None else _gather(weights.float())
        m = self.momentum
        if self.mode == "hard":
            # least similar sample of each cluster (by the unweighted feature, so a low
            # weight does not make a sample look dissimilar): sort by similarity, then
            # (stably) by label, and keep the first row of every label group
            sim = (x * self.features[y]).sum(1)
            order = torch.argsort(sim, stable=True)
            order = order[torch.argsort(y[order], stable=True)]
            ys = y[order]
            first = torch.ones_like(ys, dtype=torch.bool)
            first[1:] = ys[1:] != ys[:-1]
            x, y = x[order[first]], ys[first]
            w = None if w is None else w[order[first]]
        if w is not None:
            x = x * w[:, None]
        rounds = occurrence_rounds(y)
        for r in range(int(rounds.max()) + 1 if len(y) else 0):
            sel = rounds == r  # at most one sample per label in each round
            ys = y[sel]
            self.features[ys] = F.normalize(m * self.features[ys] + (1 - m) * x[sel], dim=1)


def modality_nce(
    memories: dict[str, ClusterMemory],
    feats: torch.Tensor,
    modality: torch.Tensor,
    labels: torch.Tensor,
    visible: int,
    infrared: int,
) -> dict[str, torch.Tensor]:
    """ClusterNCE of each modality's clustered samples against its own memory
    (``memories["v"]``, ``memories["r"]``): ``{"nce_visible", "nce_infrared"}``, a term only
    for a modality with clustered samples in the batch (labels −1 = outliers)."""
    parts = {}
    for mod, key, name in ((visible, "v", "nce_visible"), (infrared, "r", "nce_infrared")):
        sel = (modality == mod) & (labels >= 0)
        if sel.any():
            parts[name] = memories[key](feats[sel], labels[sel])
    return parts
