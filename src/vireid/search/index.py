"""Exact nearest-neighbour search over a features file (faiss inner product on the
L2-normalised features, i.e. cosine similarity; the evaluation ranks by the same score).

Cross-modality search — an infrared query against the visible gallery and the reverse —
is the default, as in VI-ReID; ``cross_modality=False`` searches the whole gallery.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from ..data.records import Modality, Sample


@dataclass(frozen=True)
class Match:
    rank: int  # 1-based
    similarity: float  # cosine similarity, higher is closer
    sample: Sample


class GalleryIndex:
    """One flat inner-product index per modality plus one over everything."""

    def __init__(self, feats: np.ndarray, samples: list[Sample]) -> None:
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        if feats.ndim != 2 or len(feats) != len(samples):
            raise ValueError(
                f"gallery: {feats.shape} features for {len(samples)} samples; expected (N, D)"
            )
        self.samples, self.dim = samples, feats.shape[1]
        mods = np.array([s.modality.value for s in samples])
        self._rows: dict[object, np.ndarray] = {"all": np.arange(len(samples))}
        for m in Modality:
            self._rows[m] = np.flatnonzero(mods == m.value)
        self._index = {}
        for key, rows in self._rows.items():
            index = faiss.IndexFlatIP(self.dim)
            if len(rows):
                index.add(feats[rows])
            self._index[key] = index

    @classmethod
    def from_file(cls, path) -> GalleryIndex:
        from ..evaluation.features import load_features, samples_from_features

        data = load_features(path)
        return cls(data["feats"], samples_from_features(data))

    def search(
        self, query: np.ndarray, modality: Modality, top: int = 10, cross_modality: bool = True
    ) -> list[list[Match]]:
        """Top ``top`` gallery matches of each query row (queries share ``modality``)."""
        q = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise ValueError(f"query features have D={q.shape[1]}, the gallery D={self.dim}")
        other = Modality.INFRARED if modality is Modality.VISIBLE else Modality.VISIBLE
        key = other if cross_modality else "all"
        rows, index = self._rows[key], self._index[key]
        if index.ntotal == 0:
            if cross_modality:
                raise ValueError(
                    f"the gallery holds no {other.value} images to search; "
                    "--any-modality searches the whole gallery"
                )
            raise ValueError("the gallery is empty")
        sims, idx = index.search(q, min(top, index.ntotal))
        return [
            [
                Match(r + 1, float(s), self.samples[rows[i]])
                for r, (s, i) in enumerate(zip(srow, irow, strict=True))
            ]
            for srow, irow in zip(sims, idx, strict=True)
        ]
