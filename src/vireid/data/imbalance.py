"""The modality-imbalance setting (MAUM, CVPR 2022, claims robustness to it): keep only a
fraction of one modality's training images, per identity, so every identity stays in both
modalities. ``data.keep_fraction`` in a recipe applies it before any sampler sees the data."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from fractions import Fraction

from .records import Modality, Sample


def keep_fraction(
    samples: list[Sample], modality: Modality | str, fraction: float, seed: int = 0
) -> list[Sample]:
    """``samples`` with, for every identity, only ``max(1, ⌊fraction · n + ½⌋)`` of its
    ``n`` images of ``modality`` (rounded half up, not Python's half-to-even ``round``; a
    seeded random choice); the other modality and the order of the kept samples are
    unchanged."""
    if not 0 < fraction <= 1:
        raise ValueError(f"keep_fraction: fraction {fraction} must lie in (0, 1]")
    modality = Modality.parse(modality)
    by_id: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if s.modality is modality:
            by_id[s.pid].append(i)
    # the decimal the user wrote, exactly: in binary floating point 0.35 · 90 + 0.5 falls
    # just below 32 and would round an exact half down
    share = Fraction(str(fraction))
    rng = random.Random(seed)
    drop: set[int] = set()
    for pid in sorted(by_id):
        idx = by_id[pid]
        keep = max(1, math.floor(share * len(idx) + Fraction(1, 2)))
        drop.update(set(idx) - set(rng.sample(idx, keep)))
    return [s for i, s in enumerate(samples) if i not in drop]
