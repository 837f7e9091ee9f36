"""TSMem: two-step memory updating (ECUL, Wu et al., arXiv 2412.19134), in ``vireid``'s
reading (docs/methods/ecul.md). The cluster memory's update rule changes once, at
``switch_epoch``: stage 1 preserves diversity, stage 2 generalises. Rules, all a momentum
step M[y] ← normalise(m·M[y] + (1−m)·t) towards one target t per cluster in the batch:

* ``random``: one member of the batch drawn uniformly (DMIC's "randomly selected samples");
* ``mean``: the mean of the cluster's (normalised) batch features;
* ``hard``: the least similar member (Cluster-Contrast's ``CM_Hard``);
* ``sequential``: Cluster-Contrast's rule, every sample in batch order
  (``ClusterMemory`` in its ``mean`` mode) — also the rule throughout when
  ``switch_epoch`` is None.

At momentum 0.1 a single-member rule (``random``, ``sequential``, ``hard``) leaves a row at
about one batch member, so ``random`` alone is Cluster-Contrast's memory in effect
(``benchmarks/bench_tsmem.py``). What makes stage 1 differ is its *proxies*
(``tsmem_stage``): ``camera`` keeps one row per (cluster, camera), read as a set
(``losses.grouped_memory``), where stage 2 reads one row per cluster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .memory import ClusterMemory, _gather

RULES = ("random", "mean", "hard", "sequential")


def tsmem_rule(epoch: int, switch_epoch: int | None, stage1: str, stage2: str) -> str:
    """The rule of 0-based ``epoch``: ``stage1`` for the first ``switch_epoch`` epochs,
    ``stage2`` afterwards; ``sequential`` throughout when ``switch_epoch`` is None."""
    if switch_epoch is None:
        return "sequential"
    return stage1 if epoch < switch_epoch else stage2


def tsmem_stage(epoch: int, cfg) -> tuple[str, str]:
    """``(rule, proxies)`` of 0-based ``epoch`` under a ``TSMemCfg``: stage 1's for the
    first ``switch_epoch`` epochs, stage 2's afterwards; Cluster-Contrast's memory
    (``sequential``, one row per cluster) throughout when ``switch_epoch`` is None."""
    if cfg.switch_epoch is None:
        return "sequential", "cluster"
    if epoch < cfg.switch_epoch:
        return cfg.stage1, cfg.stage1_proxies
    return cfg.stage2, cfg.stage2_proxies


def first_per_label(score: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Positions of the lowest ``score`` of each label (ties: earliest position), in
    ascending label order."""
    order = torch.argsort(score, stable=True)
    order = order[torch.argsort(labels[order], stable=True)]
    ys = labels[order]
    first = torch.ones_like(ys, dtype=torch.bool)
    first[1:] = ys[1:] != ys[:-1]
    return order[first]


def update_targets(
    x: torch.Tensor,
    labels: torch.Tensor,
    rule: str,
    memory: torch.Tensor,
    keys: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One target per cluster of the batch: ``(targets (C_b, D), labels (C_b,))``.
    ``x`` (B, D) normalised features, ``memory`` (C, D); ``keys`` (B,) uniform random
    numbers for ``random`` (the member with the smallest key is drawn)."""
    if rule == "mean":
        ys, inv = torch.unique(labels, return_inverse=True)
        sums = torch.zeros(len(ys), x.shape[1], dtype=x.dtype, device=x.device)
        sums.index_add_(0, inv, x)
        count = torch.bincount(inv, minlength=len(ys)).to(x.dtype)
        return sums / count[:, None], ys
    if rule == "random":
        if keys is None:
            raise ValueError("the random rule needs keys")
        pick = first_per_label(keys, labels)
    elif rule == "hard":
        pick = first_per_label((x * memory[labels]).sum(1), labels)
    else:
        raise ValueError(f"TSMem rule {rule!r}: expected one of {RULES}")
    return x[pick], labels[pick]


class TwoStepMemory(ClusterMemory):
    """A ``ClusterMemory`` whose ``update`` takes the rule of the current stage."""

    @torch.no_grad()
    def update_with(
        self,
        feats: torch.Tensor,
        labels: torch.Tensor,
        rule: str,
        generator: torch.Generator | None = None,
    ) -> None:
        """``generator`` (CPU) draws the ``random`` rule's keys; the same seed on every
        rank gives every rank the same update (features are all-gathered first)."""
        if rule == "sequential":
            return self.update(feats, labels)
        x = _gather(F.normalize(feats.detach().float(), dim=1))
        y = _gather(labels)
        if not len(y):
            return None
        keys = None
        if rule == "random":
            keys = torch.rand(len(y), generator=generator).to(x.device)
        t, ys = update_targets(x, y, rule, self.features, keys)
        m = self.momentum
        self.features[ys] = F.normalize(m * self.features[ys] + (1 - m) * t, dim=1)
        return None
