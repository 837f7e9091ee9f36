"""The gallery index: features, samples and model digest, searched per modality with
faiss, appendable, persisted as one file.

The file is the ``.npz`` features file ``vireid index`` writes (``feats``, ``pids``,
``camids``, ``modality``, ``paths``, ``model_id``; ``vireid eval --features`` reads it
too) plus ``index_spec`` (``IndexSpec`` as JSON) and, for the approximate kinds, each
modality's built faiss index (``faiss_visible``, ``faiss_infrared``: serialised bytes),
so loading neither retrains nor rebuilds. Saving writes the whole file atomically (a new
file renamed over the old), so appending costs O(N) disk writes and a crash leaves the
previous file intact.

Cross-modality search — an infrared query against the visible gallery and the reverse —
is the default, as in VI-ReID; ``cross_modality=False`` searches both modalities and
merges their top-k lists (exact for flat).

Memory: the features in gallery order (N × D float32, what is saved) plus one faiss
index per modality holding them again (Flat, IVF-Flat and HNSW-Flat store the vectors),
about 2 × N × D × 4 bytes, plus the HNSW graph (~2 × hnsw_m × 4 bytes per vector).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ..data.records import Modality, Sample
from .ann import IndexSpec, build_index, from_bytes, to_bytes, tune


@dataclass(frozen=True)
class Match:
    rank: int  # 1-based
    similarity: float  # cosine similarity, higher is closer
    sample: Sample
    row: int = -1  # the sample's row in the gallery (and its file)


class _Growing:
    """An array that grows by doubling. Rows once written are never written again (growth
    copies into a new buffer), so an earlier ``view()`` stays valid while appends go on."""

    def __init__(self, data: np.ndarray) -> None:
        self._buf, self.n = data, len(data)  # adopts ``data`` without a copy

    def extend(self, x: np.ndarray) -> None:
        need = self.n + len(x)
        if need > len(self._buf):
            new = np.empty(
                (max(need, 2 * len(self._buf), 16), *self._buf.shape[1:]), self._buf.dtype
            )
            new[: self.n] = self._buf[: self.n]
            self._buf = new
        self._buf[self.n : need] = x
        self.n = need

    def view(self) -> np.ndarray:
        return self._buf[: self.n]


@dataclass(frozen=True)
class IndexFile:
    """What a save writes, taken at one moment (``GalleryIndex.snapshot``)."""

    feats: np.ndarray
    samples: list[Sample]
    spec: IndexSpec
    model_id: str | None
    blobs: dict[Modality, np.ndarray]

    def save(self, path: str | Path) -> Path:
        from ..evaluation.features import save_features

        extra = {"index_spec": np.asarray(self.spec.model_dump_json())}
        extra.update({f"faiss_{m.value}": b for m, b in self.blobs.items()})
        return save_features(path, self.feats, self.samples, model_id=self.model_id, extra=extra)


def _other(m: Modality) -> Modality:
    return Modality.INFRARED if m is Modality.VISIBLE else Modality.VISIBLE


class GalleryIndex:
    """Gallery features with one faiss index per modality (``spec``: flat by default).

    ``feats`` (N, D) L2-normalised, one ``Sample`` per row; ``model_id`` the digest of the
    weights that embedded them (``check_model`` refuses queries of other weights). Not
    thread-safe: the service serialises access.
    """

    def __init__(
        self,
        feats: np.ndarray,
        samples: list[Sample],
        spec: IndexSpec | None = None,
        model_id: str | None = None,
    ) -> None:
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2:
            raise ValueError(f"gallery: features of shape {feats.shape}; expected (N, D)")
        self._setup(feats.shape[1], spec or IndexSpec(), model_id, "the gallery")
        self.add(feats, samples)

    def _setup(self, dim: int, spec: IndexSpec, model_id: str | None, source: str) -> None:
        self.dim, self.spec, self.model_id, self.source = dim, spec, model_id, source
        self.samples: list[Sample] = []
        self._row_of: dict[str, int] = {}  # path → its first row
        self._feats = _Growing(np.empty((0, dim), np.float32))
        self._rows = {m: _Growing(np.empty(0, np.int64)) for m in Modality}
        self._index: dict[Modality, faiss.Index | None] = dict.fromkeys(Modality)

    @classmethod
    def from_file(cls, path: str | Path, spec: IndexSpec | None = None) -> GalleryIndex:
        """Load an index file (or any features file). ``spec`` overrides the stored one:
        new search parameters apply to the stored structure; another kind or build
        parameter rebuilds it from the features. Every defect of the file (truncated,
        corrupt, NaN rows, a stored structure that does not fit) is an ``IndexFileError``
        naming it."""
        from ..evaluation.features import samples_from_features
        from .index_file import HINT, IndexFileError, read_index_file

        data = read_index_file(path)
        stored = IndexSpec()
        if "index_spec" in data:
            try:
                stored = IndexSpec.model_validate_json(str(data["index_spec"]))
            except ValueError as e:
                err = str(e).splitlines()[0]
                raise IndexFileError(f"{path}: unreadable index_spec ({err})") from None
        spec = spec or stored
        model_id = str(data["model_id"]) if "model_id" in data else None
        feats = np.ascontiguousarray(data.pop("feats"), dtype=np.float32)
        self = cls.__new__(cls)
        self._setup(feats.shape[1], spec, model_id, str(path))
        self.samples = samples_from_features(data)
        self._row_of = {s.path: i for i, s in reversed(list(enumerate(self.samples)))}
        self._feats = _Growing(feats)
        keep = spec.kind != "flat" and spec.same_structure(stored)
        mods = data["modality"].astype(str)
        for m in Modality:
            rows = np.flatnonzero(mods == m.value)
            self._rows[m] = _Growing(rows.astype(np.int64))
            blob = data.get(f"faiss_{m.value}") if keep else None
            if blob is None:
                if len(rows):
                    x = np.ascontiguousarray(feats[rows])
                    self._index_for(m, x).add(x)
                continue
            try:
                index = from_bytes(blob, spec)
            except ValueError as e:
                raise IndexFileError(f"{path}: {e}; {HINT}") from None
            if index.ntotal != len(rows) or index.d != self.dim:
                raise IndexFileError(
                    f"{path}: the stored {m.value} index holds {index.ntotal} vectors of D="
                    f"{index.d}, the file {len(rows)} of D={self.dim}; {HINT}"
                )
            self._index[m] = index
        return self

    @property
    def feats(self) -> np.ndarray:
        """(N, D) features in gallery order (a view; do not write to it)."""
        return self._feats.view()

    def __len__(self) -> int:
        return len(self.samples)

    def __contains__(self, path: str) -> bool:
        return path in self._row_of

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def counts(self) -> dict[str, int]:
        return {m.value: self._rows[m].n for m in Modality}

    def _index_for(self, m: Modality, x: np.ndarray) -> faiss.Index:
        """The modality's faiss index, built on first use (IVF: its cells trained on x)."""
        if self._index[m] is None:
            self._index[m] = build_index(self.spec, x)
        return self._index[m]

    def add(self, feats: np.ndarray, samples: list[Sample]) -> None:
        """Append rows (the faiss indexes grow; IVF keeps the cells it was trained with)."""
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or len(feats) != len(samples):
            raise ValueError(
                f"gallery: {feats.shape} features for {len(samples)} samples; expected (N, D)"
            )
        if feats.shape[1] != self.dim:
            raise ValueError(
                f"gallery: new features have D={feats.shape[1]}, the gallery D={self.dim}"
            )
        if not np.isfinite(feats).all():
            raise ValueError("gallery: new features hold NaN or infinite values")
        start = len(self.samples)
        mods = np.array([s.modality.value for s in samples])
        sel = {m: np.flatnonzero(mods == m.value) for m in Modality}
        xs = {m: np.ascontiguousarray(feats[rows]) for m, rows in sel.items() if len(rows)}
        indexes = {m: self._index_for(m, x) for m, x in xs.items()}  # may refuse: nothing added
        for m, x in xs.items():
            indexes[m].add(x)
            self._rows[m].extend(start + sel[m])
        self._feats.extend(feats)
        for i, s in enumerate(samples, start):
            self._row_of.setdefault(s.path, i)
        self.samples.extend(samples)

    def truncate(self, n: int) -> None:
        """Drop every row from ``n`` on (the service undoes additions its file refused).
        Flat and IVF remove them from their faiss indexes; HNSW cannot remove, so its
        modality index is rebuilt from the remaining features (slow for large galleries,
        and only ever done after a failed save)."""
        if not 0 <= n <= len(self):
            raise ValueError(f"truncate to {n} rows; the gallery holds {len(self)}")
        if n == len(self):
            return
        for path, row in list(self._row_of.items()):
            if row >= n:
                del self._row_of[path]
        del self.samples[n:]
        # fresh buffers: a snapshot taken earlier keeps its rows
        self._feats = _Growing(self._feats.view()[:n].copy())
        for m in Modality:
            rows = self._rows[m].view()
            keep = int(np.searchsorted(rows, n))  # rows are appended in increasing order
            self._rows[m] = _Growing(rows[:keep].copy())
            index = self._index[m]
            if index is None or index.ntotal == keep:
                continue
            if self.spec.kind == "hnsw":
                self._index[m] = None
                if keep:
                    x = np.ascontiguousarray(self.feats[rows[:keep]])
                    self._index_for(m, x).add(x)
            else:
                index.remove_ids(faiss.IDSelectorRange(keep, index.ntotal))

    def retune(self, **knobs) -> None:
        """New search-time parameters (``nprobe``, ``ef_search``) for the built structure."""
        spec = self.spec.updated(**knobs)
        if not spec.same_structure(self.spec):
            raise ValueError(f"retune changes only nprobe / ef_search, not {knobs}")
        for index in self._index.values():
            if index is not None:
                tune(index, spec)
        self.spec = spec

    def check_model(self, model_id: str, checkpoint: str | Path, adding: bool = False) -> None:
        """Refuse to mix features of other weights with this gallery's; ``adding``: also
        refuse a gallery that does not record its weights (nothing says they agree)."""
        if self.model_id is None and adding:
            raise ValueError(
                f"{self.source} does not record which weights built it (no model_id: an older "
                "vireid or another tool wrote it), so features of "
                f"{checkpoint} cannot safely join it; build a new index with `vireid index`"
            )
        if self.model_id is not None and self.model_id != model_id:
            raise ValueError(
                f"{self.source} was built with other weights (model {self.model_id}) than "
                f"{checkpoint} (model {model_id}); run `vireid index` with this checkpoint"
            )

    def search(
        self, query: np.ndarray, modality: Modality, top: int = 10, cross_modality: bool = True
    ) -> list[list[Match]]:
        """Top ``top`` gallery matches of each query row (queries share ``modality``)."""
        q = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(
                f"query features of shape {q.shape} (D={q.shape[-1]}); the gallery has D={self.dim}"
            )
        other = _other(Modality.parse(modality))
        parts = [m for m in ([other] if cross_modality else Modality) if self._rows[m].n]
        if not parts:
            if cross_modality:
                raise ValueError(
                    f"the gallery holds no {other.value} images to search across "
                    "modalities; search the whole gallery instead (--any-modality)"
                )
            raise ValueError("the gallery is empty")
        sims, rows = [], []
        for m in parts:
            index = self._index[m]
            s, i = index.search(q, min(top, index.ntotal))
            sims.append(np.where(i >= 0, s, -np.inf))  # -1: fewer hits than asked (IVF)
            rows.append(np.where(i >= 0, self._rows[m].view()[np.maximum(i, 0)], -1))
        s, r = np.concatenate(sims, axis=1), np.concatenate(rows, axis=1)
        order = np.argsort(-s, axis=1, kind="stable")[:, :top]
        out = []
        for srow, rrow in zip(
            np.take_along_axis(s, order, 1), np.take_along_axis(r, order, 1), strict=True
        ):
            hits = [(float(sim), int(row)) for sim, row in zip(srow, rrow, strict=True) if row >= 0]
            out.append(
                [Match(k + 1, sim, self.samples[row], row) for k, (sim, row) in enumerate(hits)]
            )
        return out

    def snapshot(self) -> IndexFile:
        """The current content, cheap to take (views; the approximate kinds serialise their
        faiss indexes): save it while appends go on."""
        blobs = {}
        if self.spec.kind != "flat":
            blobs = {m: to_bytes(ix) for m, ix in self._index.items() if ix is not None}
        return IndexFile(self.feats, list(self.samples), self.spec, self.model_id, blobs)

    def save(self, path: str | Path) -> Path:
        return self.snapshot().save(path)
