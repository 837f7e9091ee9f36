"""Decoding uploads with a bounded memory.

A 50 KB PNG can declare 40 million pixels: decoding it takes ~120 MB (RGB) and the
first resize of the model's transform as much again, so sixteen such uploads at once
took the service from 0.9 to 5 GB. Three things bound it:

* ``max_pixels``: an image declaring more pixels is refused (413) from its header,
  before any pixel is decoded;
* ``Decoder``: at most ``max_decodes`` decodes run at once and together they hold at
  most ``pixel_budget`` declared pixels (a request waits for its turn, up to ``wait_s``,
  then gets 503): the decoded images in memory never exceed
  ``pixel_budget × BYTES_PER_PIXEL`` bytes, whatever the number of requests;
* the decoded picture is shrunk at once to the model's input size, exactly as the
  model's own transform would (``v2.ToImage`` + ``v2.Resize(antialias=True)``; the
  transform's resize is then the identity, so the features are the ones ``vireid
  index`` computes for the same file, bit for bit), and only that (H × W × 3 bytes)
  waits for the model;
* ``limit_heap_growth``: freed image buffers go back to the system instead of staying
  in the malloc arenas of the threads that decoded them.

The bound: the process grows by at most ``pixel_budget × BYTES_PER_PIXEL`` for decoding
(560 MB at the defaults, 40 MP) whatever the load (measured: tests/test_serve_adversarial.py,
docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import stat
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..search.images import SAFE_FORMATS

SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp"}  # what `vireid index` reads back
# peak bytes per declared pixel of one decode + shrink, measured for 6300² PNGs: RGB 10,
# RGBA 14 (decode 4, RGB convert 4, tensor copy 3, resize buffers); docs/deploy.md
BYTES_PER_PIXEL = 14
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters


def limit_heap_growth() -> bool:
    """Make glibc give freed image memory back (process-wide; ``vireid serve`` calls it at
    start, before its worker threads exist; False where malloc is not glibc's):

    * ``M_MMAP_THRESHOLD`` 1 MiB (fixed: glibc otherwise raises it as large blocks are
      freed): every buffer over 1 MiB is mapped on its own and unmapped when freed;
    * ``M_ARENA_MAX`` 2: the smaller buffers of decoding are not spread over one arena
      per worker thread, each keeping its freed pieces.

    Measured with sixteen 4-megapixel PNG searches, 16 at a time, decoded one at a time:
    the service grew by 430 MB and stayed there; with the threshold alone 130 MB (93 MB
    stayed); with both 42 MB (5 MB stayed)."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 2**20) and libc.mallopt(M_ARENA_MAX, 2))
    except (OSError, AttributeError):
        return False


class ServiceError(ValueError):
    """A request the service refuses; ``status`` is its HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """An uploaded picture: its bytes, its image and the file suffix of its format.
    ``image``: an RGB PIL image, or — decoded for a model — the (H, W, 3) uint8 array
    the model's transform would make of it."""

    data: bytes
    image: Image.Image | np.ndarray
    suffix: str
    name: str = "upload"  # what errors call it, e.g. "images 'a.png'"


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if not data:
        raise ServiceError(400, f"{name}: the upload is empty; expected a JPEG, PNG or BMP image")
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning: max_pixels decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # only these decoders: other PIL plugins (EPS: Ghostscript) are no input for a server
            im = Image.open(io.BytesIO(data), formats=list(SAFE_FORMATS))
    except UnidentifiedImageError:
        raise ServiceError(400, f"{name}: not a JPEG, PNG or BMP image") from None
    except Image.DecompressionBombError as e:
        raise ServiceError(413, f"{name}: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ServiceError(400, f"{name}: a broken image header ({e})") from None
    w, h = im.size
    if w * h > max_pixels:
        raise ServiceError(413, f"{name}: {w}×{h} pixels, more than the limit of {max_pixels:,}")
    return im


def shrink(im: Image.Image, height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8: the first two steps of ``build_test_transform``."""
    from torchvision.transforms import v2

    x = v2.Resize((height, width), antialias=True)(v2.ToImage()(im))
    return x.permute(1, 2, 0).contiguous().numpy()


def decode_upload(
    data: bytes, name: str, max_pixels: int, size: tuple[int, int] | None = None
) -> Upload:
    """Bytes of one JPEG/PNG/BMP upload → ``Upload`` (``ServiceError`` naming ``name``).
    ``size`` (height, width): shrink to the model's input (see the module's doc)."""
    im = _open(data, name, max_pixels)
    try:
        with im:
            suffix = SUFFIXES[im.format]
            if size is None:
                return Upload(data, im.convert("RGB"), suffix, name)
            im.load()  # an RGB image is shrunk as decoded: convert() would copy it
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            return Upload(data, shrink(rgb, *size), suffix, name)
    except (OSError, SyntaxError, ValueError) as e:  # a truncated or corrupt file
        raise ServiceError(400, f"{name}: a broken image ({e})") from None


class Decoder:
    """Decodes uploads for a model of input ``size`` within the budgets above."""

    def __init__(
        self,
        size: tuple[int, int],
        *,
        max_pixels: int = 40_000_000,
        max_decodes: int = 2,
        pixel_budget: int | None = None,
        wait_s: float = 60.0,
    ) -> None:
        if max_decodes < 1:
            raise ValueError(f"max_decodes={max_decodes}; expected at least 1")
        self.size, self.max_pixels, self.max_decodes = size, max_pixels, max_decodes
        # default: one image at the limit at a time (or many small ones); one image at
        # the limit must always fit, or it could never be decoded
        self.pixel_budget = max(pixel_budget or max_pixels, max_pixels)
        self.wait_s = wait_s
        self._free = self.pixel_budget
        self._running = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def _turn(self, pixels: int, name: str):
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self._running >= self.max_decodes or self._free < pixels:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceError(
                        503, f"{name}: the service is busy decoding other images; try again"
                    )
                self._cond.wait(left)
            self._running += 1
            self._free -= pixels
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._free += pixels
                self._cond.notify_all()

    def __call__(self, data: bytes, name: str) -> Upload:
        im = _open(data, name, self.max_pixels)  # the header alone: no pixel decoded yet
        w, h = im.size
        im.close()
        with self._turn(w * h, name):
            return decode_upload(data, name, self.max_pixels, self.size)

    def thumbnail(self, path: str, height: int = 128, max_bytes: int = 64 * 2**20) -> bytes:
        """A ``height``-pixel-high JPEG of the gallery image at ``path``, decoded like an
        upload (the safe formats, ``max_pixels``, the budgets: an index file names the
        path, and an index file can be crafted); ``ServiceError`` if it cannot be."""
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
                raise ServiceError(404, "not a regular image file of a sane size")
            data = Path(path).read_bytes()
        except OSError as e:
            raise ServiceError(404, e.strerror or type(e).__name__) from None
        im = _open(data, "the gallery image", self.max_pixels)
        w, h = im.size
        with self._turn(w * h, "the gallery image"), im:
            try:
                im.draft("RGB", (max(1, w * height // h), height))  # JPEG: decode it smaller
                rgb = im.convert("RGB")
            except (OSError, SyntaxError, ValueError) as e:
                raise ServiceError(404, f"a broken image ({e})") from None
            small = rgb.resize((max(1, round(rgb.width * height / rgb.height)), height))
        buf = io.BytesIO()
        small.save(buf, format="JPEG", quality=80)
        return buf.getvalue()

    def stats(self) -> dict:
        with self._cond:
            return {"decoding": self._running, "pixels_in_flight": self.pixel_budget - self._free}
