"""What the HTTP service does, without HTTP: decode uploads, embed, search and grow one
gallery index from many threads at once, and keep its file up to date.

Concurrency: one lock serialises the model (parallel forward passes on the same cores
only compete), one guards the index (faiss indexes are not safe to search while they
grow; a search holds it for the search alone, not the embedding). ``add`` returns once
its entries are in the file: saves are group commits — a save writes everything added so
far, and requests that arrive while one is being written share the next — so concurrent
adds cost one O(N) rewrite per round, not one each, and searches go on meanwhile (the
save writes a ``snapshot``). Uploaded gallery images are kept under ``upload_dir``, named
by their content's hash, so the same picture is stored and indexed once.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..data.records import Modality, Sample
from ..search import GalleryIndex
from ..utils.io import atomic_write
from ..utils.logging import get_logger

log = get_logger(__name__)
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp"}  # what `vireid index` reads back


class ServiceError(ValueError):
    """A request the service refuses; ``status`` is its HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """An uploaded picture: its bytes, decoded RGB image and file suffix."""

    data: bytes
    image: Image.Image
    suffix: str


def decode_upload(data: bytes, name: str, max_pixels: int) -> Upload:
    """Bytes of one JPEG/PNG/BMP upload → ``Upload`` (``ServiceError`` naming ``name``)."""
    if not data:
        raise ServiceError(400, f"{name}: the upload is empty; expected a JPEG, PNG or BMP image")
    try:
        # only these decoders: other PIL plugins (EPS: Ghostscript) are no input for a server
        im = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except UnidentifiedImageError:
        raise ServiceError(400, f"{name}: not a JPEG, PNG or BMP image") from None
    except Image.DecompressionBombError as e:
        raise ServiceError(413, f"{name}: {e}") from None
    w, h = im.size
    if w * h > max_pixels:
        raise ServiceError(413, f"{name}: {w}×{h} pixels, more than the limit of {max_pixels:,}")
    try:
        with im:
            return Upload(data, im.convert("RGB"), FORMATS[im.format])
    except (OSError, SyntaxError, ValueError) as e:  # a truncated or corrupt file
        raise ServiceError(400, f"{name}: a broken image ({e})") from None


@dataclass(frozen=True)
class Added:
    row: int
    sample: Sample  # the indexed entry (for a duplicate: the one indexed first)
    new: bool


class GalleryService:
    """A gallery index file and the ``FeatureExtractor`` that built it.

    ``read_only``: refuse additions. ``upload_dir``: where added pictures are stored
    (default: ``<index stem>_uploads/`` beside the index file).
    """

    def __init__(
        self,
        index_path: str | Path,
        extractor,
        *,
        upload_dir: str | Path | None = None,
        read_only: bool = False,
    ) -> None:
        self.index_path = Path(index_path)
        self.gallery = GalleryIndex.from_file(self.index_path)
        self.gallery.check_model(extractor.model_id, extractor.checkpoint)
        self.extractor, self.read_only = extractor, read_only
        self.upload_dir = Path(
            upload_dir or self.index_path.with_name(f"{self.index_path.stem}_uploads")
        )
        self._model_lock, self._index_lock, self._save_lock = (threading.Lock() for _ in range(3))
        self._version = self._saved = 0  # additions made / written to the file

    def _embed(self, images: list[Image.Image], modality: Modality):
        with self._model_lock:
            return self.extractor(images, modality)

    def health(self) -> dict:
        with self._index_lock:
            counts, n = self.gallery.counts(), len(self.gallery)
        return {
            "status": "ok",
            "images": n,
            **counts,
            "dim": self.gallery.dim,
            "index": self.gallery.spec.kind,
            "model": self.extractor.model_id,
            "read_only": self.read_only,
        }

    def search(self, query: Upload, modality: Modality, k: int, cross_modality: bool = True):
        """Top ``k`` matches of one query picture."""
        q = self._embed([query.image], modality)
        with self._index_lock:
            try:
                return self.gallery.search(q, modality, k, cross_modality)[0]
            except ValueError as e:  # e.g. no image of the other modality yet
                raise ServiceError(409, str(e)) from None

    def add(
        self, uploads: list[Upload], modality: Modality, camid: int = 0, pid: int = -1
    ) -> list[Added]:
        """Store, embed and index ``uploads``; returns once the index file holds them."""
        if self.read_only:
            raise ServiceError(403, "this service is read-only (started with --read-only)")
        samples = [self._store(u, modality, camid, pid) for u in uploads]
        first = {}  # the same picture twice in one request is indexed once
        for i, s in enumerate(samples):
            first.setdefault(s.path, i)
        with self._index_lock:
            todo = [i for path, i in first.items() if path not in self.gallery]
        feats = self._embed([uploads[i].image for i in todo], modality)
        with self._index_lock:
            # another request may have added the same picture while this one embedded it
            keep = [j for j, i in enumerate(todo) if samples[i].path not in self.gallery]
            if keep:
                self.gallery.add(feats[keep], [samples[todo[j]] for j in keep])
                self._version += 1
            version, added = self._version, {todo[j] for j in keep}
            rows = [self.gallery.row_of(s.path) for s in samples]
            out = [Added(r, self.gallery.samples[r], i in added) for i, r in enumerate(rows)]
        self._save(version)  # also waits for a concurrent request's copy of a duplicate
        return out

    def _store(self, up: Upload, modality: Modality, camid: int, pid: int) -> Sample:
        path = self.upload_dir / f"{hashlib.sha256(up.data).hexdigest()[:32]}{up.suffix}"
        if not path.exists():
            atomic_write(path, lambda tmp: Path(tmp).write_bytes(up.data))
        return Sample(str(path), pid, camid, modality)

    def _save(self, version: int) -> None:
        """Group commit: return once the file holds addition ``version``."""
        with self._save_lock:
            if self._saved >= version:  # a save that started after it already wrote it
                return
            with self._index_lock:
                snap, upto = self.gallery.snapshot(), self._version
            snap.save(self.index_path)
            self._saved = upto
            log.info("saved %d gallery images to %s", len(snap.samples), self.index_path)

    def image_path(self, row: int) -> str:
        with self._index_lock:
            if not 0 <= row < len(self.gallery):
                raise ServiceError(
                    404, f"no gallery image {row}; the gallery holds {len(self.gallery)}"
                )
            return self.gallery.samples[row].path
