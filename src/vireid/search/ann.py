"""Which faiss index a gallery uses: exact (flat) or approximate (IVF, HNSW), all on inner
product over L2-normalised features (= cosine similarity).

* ``flat`` (default): ``IndexFlatIP``, exact; a query costs N × D multiply-adds.
* ``ivf``: ``IndexIVFFlat`` — k-means cells (``nlist``, trained on up to 64 vectors per
  cell of those the index is built with), a query scans its ``nprobe`` nearest cells.
  Build cost one k-means plus an assignment of every vector; memory as flat (+ 8 bytes of
  id per vector).
* ``hnsw``: ``IndexHNSWFlat`` — a navigable small-world graph of ``hnsw_m`` links per
  node (``ef_construction`` candidates while inserting, ``ef_search`` while searching).
  No training; slower to build, fastest to query; + ~2 × hnsw_m × 4 bytes per vector.

Recall@10 against flat and query time at 1,000,000 features: ``benchmarks/bench_index.py``
and docs/deploy.md. Approximate kinds may return fewer than k matches (a probe can reach
fewer vectors than asked for).
"""

from __future__ import annotations

import math
import threading
from typing import Literal

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

TRAIN_PER_CELL = 64
# parameters that shape the built structure; the rest are search-time knobs
BUILD_KEYS = ("kind", "nlist", "hnsw_m", "ef_construction")


class IndexSpec(BaseModel):
    """How a gallery is indexed; stored with it (``index_spec`` in the file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["flat", "ivf", "hnsw"] = "flat"
    nlist: int | None = Field(
        None, ge=1, description="IVF cells (default 4·√n, at most n/39, n = vectors at build)"
    )
    nprobe: int = Field(16, ge=1, description="IVF cells scanned per query")
    hnsw_m: int = Field(32, ge=2, description="HNSW links per node")
    ef_construction: int = Field(80, ge=1, description="HNSW candidates while inserting")
    ef_search: int = Field(64, ge=1, description="HNSW candidates while searching")

    def updated(self, **given) -> IndexSpec:
        """This spec with the given fields (None: keep) replaced, validated."""
        fields = {**self.model_dump(), **{k: v for k, v in given.items() if v is not None}}
        try:
            return IndexSpec.model_validate(fields)
        except ValidationError as e:
            err = e.errors()[0]
            key = ".".join(map(str, err["loc"]))
            raise ValueError(f"index {key}={err.get('input')!r}: {err['msg']}") from None

    def same_structure(self, other: IndexSpec) -> bool:
        return all(getattr(self, k) == getattr(other, k) for k in BUILD_KEYS)


def auto_nlist(n: int) -> int:
    """4·√n cells, but at least 39 training vectors per cell (faiss' own minimum)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def build_index(spec: IndexSpec, feats: np.ndarray) -> faiss.Index:
    """An empty index of ``spec.kind`` for (n, D) ``feats``, trained on them if it needs
    training (IVF); the caller adds them."""
    dim = feats.shape[1]
    if spec.kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif spec.kind == "ivf":
        nlist = spec.nlist or auto_nlist(len(feats))
        if nlist > len(feats):
            raise ValueError(f"ivf index: nlist={nlist} cells for {len(feats)} vectors")
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        # k-means on at most 64 vectors per cell (faiss' default 256): 4x faster to build
        # at a million images, and cells this well sampled already
        index.cp.max_points_per_centroid = TRAIN_PER_CELL
        index.train(feats)
    else:
        index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.ef_construction
    tune(index, spec)
    return index


def tune(index: faiss.Index, spec: IndexSpec) -> None:
    """Apply the search-time parameters."""
    if spec.kind == "ivf":
        index.nprobe = min(spec.nprobe, index.nlist)
    elif spec.kind == "hnsw":
        index.hnsw.efSearch = spec.ef_search


def to_bytes(index: faiss.Index) -> np.ndarray:
    return faiss.serialize_index(index)


# what ``build_index`` makes of each approximate kind, and its faiss file tag
_STORED = {"ivf": (b"IwFl", "IndexIVFFlat"), "hnsw": (b"IHNf", "IndexHNSWFlat")}
_LIMITS = threading.Lock()  # faiss' deserialisation limits are process-wide


def from_bytes(blob: np.ndarray, spec: IndexSpec) -> faiss.Index:
    """A stored ``spec.kind`` index from its bytes, which may have been crafted: only the
    kind ``build_index`` makes is read, and faiss is told that no array in it can be
    larger than the blob itself (otherwise it allocates whatever a size field says, e.g.
    8 GB for a 300-byte blob, before finding the data missing). ``ValueError`` if broken."""
    tag, cls = _STORED[spec.kind]
    if not isinstance(blob, np.ndarray) or blob.dtype != np.uint8 or blob.ndim != 1:
        raise ValueError(f"the stored {spec.kind} index is not a byte array")
    if bytes(blob[:4]) != tag:
        raise ValueError(f"the stored {spec.kind} index is not a faiss {cls}")
    with _LIMITS:
        limits = (
            faiss.get_deserialization_vector_byte_limit(),
            faiss.get_deserialization_loop_limit(),
        )
        faiss.set_deserialization_vector_byte_limit(len(blob) + 1)
        faiss.set_deserialization_loop_limit(len(blob) + 1)
        try:
            index = faiss.deserialize_index(np.ascontiguousarray(blob))
        except (RuntimeError, MemoryError) as e:  # faiss' own checks, one line of them
            reason = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            reason = reason.rsplit("Error: ", 1)[-1].strip("' ")[:160]
            raise ValueError(f"the stored {spec.kind} index is broken ({reason})") from None
        finally:
            faiss.set_deserialization_vector_byte_limit(limits[0])
            faiss.set_deserialization_loop_limit(limits[1])
    storage = index.storage if spec.kind == "hnsw" else index.quantizer
    if (
        type(index).__name__ != cls
        or index.metric_type != faiss.METRIC_INNER_PRODUCT
        or storage.d != index.d
        or (spec.kind == "hnsw" and storage.ntotal != index.ntotal)
        or (spec.kind == "ivf" and storage.ntotal != index.nlist)
        or (spec.kind == "ivf" and index.invlists.compute_ntotal() != index.ntotal)
    ):
        raise ValueError(f"the stored {spec.kind} index is not one `vireid index` writes")
    tune(index, spec)
    return index
