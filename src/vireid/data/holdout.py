"""A validation split carved out of the training identities (``data.val_ids``), so a model
can be selected (``best.pt``) without looking at the test set.

The held-out identities leave training entirely (their images, both modalities); the
validation queries are their infrared images and the gallery their visible images, the
cross-modality direction of the community's default protocols. Which identities: a
seeded draw among those seen in both modalities, so the split depends only on the
training list and the seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .records import Modality, Sample


@dataclass
class ValidationSplit:
    pids: list[int]
    query: list[Sample]  # infrared images of the held-out identities
    gallery: list[Sample]  # their visible images


def hold_out_ids(train: list[Sample], n: int, seed: int) -> tuple[list[Sample], ValidationSplit]:
    """(the training list without ``n`` identities, their validation split)."""
    both = sorted(
        {s.pid for s in train if s.modality is Modality.VISIBLE}
        & {s.pid for s in train if s.modality is Modality.INFRARED}
    )
    if n >= len(both):
        raise ValueError(
            f"data.val_ids={n}: the training list has {len(both)} identities seen in both "
            "modalities; hold out fewer, so some remain to train on"
        )
    held = set(np.random.default_rng(seed).permutation(both)[:n].tolist())
    rest = [s for s in train if s.pid not in held]
    query = [s for s in train if s.pid in held and s.modality is Modality.INFRARED]
    gallery = [s for s in train if s.pid in held and s.modality is Modality.VISIBLE]
    return rest, ValidationSplit(sorted(held), query, gallery)
