"""A few identities of a training set: ``data.subset_ids`` (smoke runs, debugging) trains on
the first N identities, by sorted id, that have images in both modalities (the
cross-modality samplers draw only such identities)."""

from __future__ import annotations

from .records import Modality, Sample


def first_identities(samples: list[Sample], n: int) -> list[Sample]:
    """``samples`` of the first ``n`` identities (sorted ids) seen in both modalities, in
    their original order."""
    if n < 1:
        raise ValueError(f"subset_ids: {n} identities; expected at least 1")
    both = {s.pid for s in samples if s.modality is Modality.VISIBLE} & {
        s.pid for s in samples if s.modality is Modality.INFRARED
    }
    keep = set(sorted(both)[:n])
    return [s for s in samples if s.pid in keep]
