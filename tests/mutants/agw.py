"""Mutants of the supervised baselines AGW and CAJ (losses/triplet.py, methods/supervised.py)."""

from __future__ import annotations

import torch

from vireid.losses import triplet

from . import mutant


@mutant(
    "agw.wrt_uniform_weights",
    "AGW weighted regularisation: softmax weights over positives / negatives replaced by "
    "a plain mean",
    tests=["tests/test_losses.py::test_wrt_brute_force"],
    fast=True,
)
def _(mp):
    def uniform(dist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask / (mask.sum(dim=1, keepdim=True) + 1e-6)

    mp.setattr(triplet, "_softmax_weights", uniform)
