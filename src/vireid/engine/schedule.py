"""AGW's epoch-wise learning-rate schedule: linear warm-up, then step decays."""

from __future__ import annotations


def lr_factor(
    epoch: int,
    warmup_epochs: int,
    milestones: list[int],
    gamma: float,
    warmup_start: float | None = None,
    progress: float = 0.0,
) -> float:
    """Multiplier of the base lr at ``epoch`` (0-based). Warm-up: (epoch + 1) / warmup
    (AGW ``adjust_learning_rate``), or, with ``warmup_start`` (a factor of the base lr),
    linear per iteration from ``warmup_start`` to 1 over the warm-up epochs, ``progress``
    being the fraction of the current epoch done (MUN §4.2: "from 1e-8 to 0.002 in the
    first 15 epochs"); afterwards ``gamma`` per milestone passed."""
    if epoch < warmup_epochs:
        if warmup_start is None:
            return (epoch + 1) / warmup_epochs
        t = (epoch + progress) / warmup_epochs
        return warmup_start + (1.0 - warmup_start) * t
    return gamma ** sum(epoch >= m for m in milestones)
