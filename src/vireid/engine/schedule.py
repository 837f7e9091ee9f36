"""AGW's epoch-wise learning-rate schedule: linear warm-up, then step decays."""

from __future__ import annotations


def lr_factor(epoch: int, warmup_epochs: int, milestones: list[int], gamma: float) -> float:
    """Multiplier of the base lr at ``epoch`` (0-based). Warm-up: (epoch + 1) / warmup
    (AGW ``adjust_learning_rate``); afterwards ``gamma`` per milestone passed."""
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    return gamma ** sum(epoch >= m for m in milestones)
