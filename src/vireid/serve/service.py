"""What the HTTP service does, without HTTP: embed, search and grow one gallery index from
many threads at once, and keep its file up to date.

Concurrency: one lock serialises the model (parallel forward passes on the same cores
only compete), one guards the index (faiss indexes are not safe to search while they
grow; a search holds it for the search alone, not the embedding). ``add`` returns once
its entries are in the file: saves are group commits — a save writes everything added so
far, and requests that arrive while one is being written share the next — so concurrent
adds cost one O(N) rewrite per round, not one each, and searches go on meanwhile (the
save writes a ``snapshot``).

Memory and file agree at every answer: when a save fails (a full disk, an I/O error)
the additions it held are removed from memory again and their requests are refused
(507 for a full disk), ``/health`` turns ``degraded`` until a save succeeds, and nothing
was acknowledged that the file does not hold. Values are checked against what the file
stores (int64 labels) before anything is kept, and a refused addition's upload files are
removed again unless a row or another request in flight uses them.

Ownership: a service that may write holds the index file's lock (``IndexLock``) from
start to ``close()``, so ``vireid index --append`` or a second service cannot write the
same file meanwhile. Uploaded gallery images are kept under ``upload_dir``, named by
their content's hash, so the same picture is stored and indexed once; posting it again
with other labels is refused (409) rather than silently ignored.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..data.records import Modality, Sample
from ..search import GalleryIndex
from ..search.lock import IndexLock
from ..utils.io import atomic_write
from ..utils.logging import get_logger
from .decode import ServiceError, Upload

log = get_logger(__name__)
INT64_MAX = 2**63 - 1
LEFTOVER_AGE_S = 3600  # an upload's temporary file older than this is a killed writer's


def check_labels(camid: int, pid: int) -> None:
    """Labels the index file can store (int64), in their ranges; 422 otherwise."""
    if not -1 <= pid <= INT64_MAX:
        raise ServiceError(422, f"pid: {pid} is out of range; expected -1 (unknown) to {INT64_MAX}")
    if not 0 <= camid <= INT64_MAX:
        raise ServiceError(422, f"camera: {camid} is out of range; expected 0 to {INT64_MAX}")


def _reason(e: BaseException) -> tuple[int, str]:
    """HTTP status and a path-free reason for a failed write."""
    if isinstance(e, OSError):
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        return (507 if full else 503), (e.strerror or type(e).__name__)
    return 500, type(e).__name__


@dataclass(frozen=True)
class Added:
    row: int
    sample: Sample  # the indexed entry (for a duplicate: the one indexed first)
    new: bool


class GalleryService:
    """A gallery index file and the ``FeatureExtractor`` that built it.

    ``read_only``: refuse additions (and do not lock the file). ``upload_dir``: where
    added pictures are stored (default: ``<index stem>_uploads/`` beside the index file).
    Call ``close()`` (or use it as a context manager) to hand the file's lock back.
    """

    def __init__(
        self,
        index_path: str | Path,
        extractor,
        *,
        upload_dir: str | Path | None = None,
        read_only: bool = False,
    ) -> None:
        self.index_path = Path(os.path.abspath(index_path))  # the same file from any cwd
        self.extractor, self.read_only = extractor, read_only
        self._lock = None if read_only else IndexLock(self.index_path).acquire()
        try:
            self.gallery = GalleryIndex.from_file(self.index_path)
            self.gallery.check_model(extractor.model_id, extractor.checkpoint, adding=not read_only)
        except BaseException:
            self.close()
            raise
        default = self.index_path.with_name(f"{self.index_path.stem}_uploads")
        self.upload_dir = Path(os.path.abspath(upload_dir or default))
        if not read_only:
            self._remove_leftovers()
        self._model_lock, self._index_lock, self._save_lock = (threading.Lock() for _ in range(3))
        self._saved = len(self.gallery)  # rows the file holds
        # an epoch ends when a failed save undoes its additions: rows it kept, and why
        self._epoch, self._ended = 0, {}
        self._save_error: str | None = None
        self._in_flight: Counter[str] = Counter()  # upload files claimed by running additions

    def close(self) -> None:
        if getattr(self, "_lock", None) is not None:
            self._lock.release()

    def __enter__(self) -> GalleryService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _remove_leftovers(self) -> None:
        if not self.upload_dir.is_dir():
            return
        old = time.time() - LEFTOVER_AGE_S
        for tmp in self.upload_dir.glob(".*.tmp"):
            try:
                if tmp.stat().st_mtime < old:
                    tmp.unlink()
            except OSError as e:
                log.warning("could not remove %s, left by a killed writer: %s", tmp, e)

    def _embed(self, images: list, modality: Modality):
        with self._model_lock:
            return self.extractor(images, modality)

    def health(self) -> dict:
        with self._index_lock:
            counts, n = self.gallery.counts(), len(self.gallery)
        out = {
            "status": "ok" if self._save_error is None else "degraded",
            "images": n,
            **counts,
            "dim": self.gallery.dim,
            "index": self.gallery.spec.kind,
            "model": self.extractor.model_id,
            "read_only": self.read_only,
        }
        if self._save_error is not None:
            out["error"] = self._save_error
        return out

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
        check_labels(camid, pid)
        paths = [self._upload_path(u) for u in uploads]
        with self._index_lock:
            self._refuse_relabel(uploads, paths, modality, camid, pid)
            self._in_flight.update(paths)
        try:
            out = self._store_and_index(uploads, paths, modality, camid, pid)
        except BaseException:
            self._release(paths, failed=True)
            raise
        self._release(paths, failed=False)
        return out

    def _store_and_index(self, uploads, paths, modality, camid, pid) -> list[Added]:
        for u, path in zip(uploads, paths, strict=True):
            self._store(u, path)
        samples = [Sample(path, pid, camid, modality) for path in paths]
        first = {}  # the same picture twice in one request is indexed once
        for i, s in enumerate(samples):
            first.setdefault(s.path, i)
        with self._index_lock:
            todo = [i for path, i in first.items() if path not in self.gallery]
        feats = self._embed([uploads[i].image for i in todo], modality)
        with self._index_lock:
            # another request may have added the same picture while this one embedded it
            self._refuse_relabel(uploads, paths, modality, camid, pid)
            keep = [j for j, i in enumerate(todo) if samples[i].path not in self.gallery]
            if keep:
                self.gallery.add(feats[keep], [samples[todo[j]] for j in keep])
            added = {todo[j] for j in keep}
            rows = [self.gallery.row_of(s.path) for s in samples]
            out = [Added(r, self.gallery.samples[r], i in added) for i, r in enumerate(rows)]
            need, epoch = max(rows) + 1, self._epoch
        self._commit(need, epoch)  # also waits for a concurrent request's copy of a duplicate
        return out

    def _release(self, paths: list[str], failed: bool) -> None:
        """Drop this request's claim on its upload files. A refused or failed addition
        removes those that no row and no other request in flight uses: they would only
        pile up in the upload folder. Under the index lock, so a request that claims the
        same picture meanwhile finds the file either gone (and stores it) or kept."""
        with self._index_lock:
            self._in_flight.subtract(paths)
            for path in set(paths):
                if self._in_flight[path] > 0:
                    continue
                del self._in_flight[path]
                if failed and path not in self.gallery:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    except OSError as e:
                        log.warning("could not remove the refused upload %s: %s", path, e)

    def _upload_path(self, up: Upload) -> str:
        return str(self.upload_dir / f"{hashlib.sha256(up.data).hexdigest()[:32]}{up.suffix}")

    def _refuse_relabel(self, uploads, paths, modality, camid, pid) -> None:
        for up, path in zip(uploads, paths, strict=True):
            row = self.gallery.row_of(path)
            if row is None:
                continue
            s = self.gallery.samples[row]
            if (s.modality, s.camid, s.pid) != (modality, camid, pid):
                raise ServiceError(
                    409,
                    f"{up.name}: this picture is already gallery image {row} "
                    f"({s.modality.value}, camera {s.camid}, pid {s.pid}); posting it again "
                    f"as ({modality.value}, camera {camid}, pid {pid}) would not change that",
                )

    def _store(self, up: Upload, path: str) -> None:
        if os.path.exists(path):
            return
        try:
            atomic_write(path, lambda tmp: Path(tmp).write_bytes(up.data))
        except OSError as e:
            status, reason = _reason(e)
            log.error("could not store an upload in %s: %s", self.upload_dir, e)
            raise ServiceError(
                status, f"{up.name}: not added, the picture could not be stored ({reason})"
            ) from None

    def _commit(self, need: int, epoch: int) -> None:
        """Group commit: return once the file holds the first ``need`` rows, or raise the
        refusal of the failed save that removed them again."""
        with self._save_lock:
            if epoch != self._epoch:  # a failed save has ended that epoch
                kept, refusal = self._ended[epoch]
                if need <= kept:
                    return
                raise refusal
            if need <= self._saved:  # a save that started after it already wrote it
                return
            with self._index_lock:
                snap = self.gallery.snapshot()
            try:
                snap.save(self.index_path)
            except Exception as e:  # whatever failed, memory goes back to what the file holds
                status, reason = _reason(e)
                log.error("saving %s failed; additions undone: %r", self.index_path, e)
                refusal = ServiceError(
                    status,
                    f"not added: the gallery could not be saved ({reason}); it holds what it "
                    "held before",
                )
                with self._index_lock:
                    self.gallery.truncate(self._saved)
                    self._ended[self._epoch] = (self._saved, refusal)
                    self._epoch += 1
                self._save_error = f"the last save failed ({reason}); additions were undone"
                raise refusal from None
            self._saved = len(snap.samples)
            self._save_error = None
            log.info("saved %d gallery images to %s", self._saved, self.index_path)

    def image_path(self, row: int) -> str:
        with self._index_lock:
            if not 0 <= row < len(self.gallery):
                raise ServiceError(
                    404, f"no gallery image {row}; the gallery holds {len(self.gallery)}"
                )
            return self.gallery.samples[row].path
