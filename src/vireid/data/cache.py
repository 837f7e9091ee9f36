"""Decoded-image cache: every image decoded and resized once to the training size, stored
as one memory-mapped uint8 ``.npy`` array of shape (N, H, W, 3).

The file name is a hash of the image paths, their sizes and modification times, the
target size and the cache format version, so a changed dataset or size builds a new
cache. It is written to a temporary file and renamed into place, so an interrupted build
leaves nothing that could be mistaken for a finished cache. Like the community's ``.npy``
preprocessing (AGW ``pre_process_sysu.py``) but automatic.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..utils.io import atomic_write
from .datasets.errors import DatasetError

FORMAT_VERSION = 1
IMAGE_FORMATS = ("JPEG", "PNG", "BMP")
# a person image is far smaller; this bounds one decode to ~120 MB of RGB (the service's
# default upload limit is the same)
MAX_PIXELS = 40_000_000


def load_rgb(path: str) -> Image.Image:
    """Open an image as RGB (IR images decode to 3 identical channels). Only JPEG, PNG and
    BMP are decoded (Pillow's other plugins are no input for a dataset; EPS would run
    Ghostscript), and at most ``MAX_PIXELS`` of them (a decompression bomb would take
    gigabytes); an unreadable, truncated or refused file raises one ``DatasetError``
    naming it."""
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning (> 89 MP) as an error
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path, formats=IMAGE_FORMATS)
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise DatasetError(
                    f"{path}: {w}×{h} pixels, more than the limit of {MAX_PIXELS:,} "
                    "(vireid.data.cache.MAX_PIXELS); expected a person image"
                )
            return im.convert("RGB")
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file does not exist") from None
    except PermissionError:
        raise DatasetError(f"{path}: permission denied; cannot read the image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DatasetError(f"{path}: refused as a decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise DatasetError(f"{path}: cannot decode image: not a JPEG, PNG or BMP file") from None
    except Exception as e:  # Pillow's decoders raise many types on damaged data
        first = (str(e).splitlines() or [""])[0][:200]
        raise DatasetError(
            f"{path}: cannot decode image ({type(e).__name__}: {first}); expected a JPEG/PNG/BMP"
        ) from None


def resize_rgb(path: str, height: int, width: int) -> np.ndarray:
    # LANCZOS as AGW's preprocessing (Image.ANTIALIAS before Pillow 10)
    return np.asarray(load_rgb(path).resize((width, height), Image.LANCZOS), dtype=np.uint8)


def cache_key(paths: Sequence[str], height: int, width: int) -> str:
    h = hashlib.sha1(f"v{FORMAT_VERSION}:{height}x{width}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def build_cache(
    paths: Sequence[str], height: int, width: int, cache_dir: str | Path, progress=None
) -> np.ndarray:
    """Return a read-only memory map (N, H, W, 3) of the resized images, building it if
    needed. ``progress(n)`` is called as images are decoded."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"images-{height}x{width}-{cache_key(paths, height, width)}.npy"
    if not target.exists():

        def write(tmp: str) -> None:
            arr = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.uint8, shape=(len(paths), height, width, 3)
            )
            for i, p in enumerate(paths):
                arr[i] = resize_rgb(p, height, width)
                if progress:
                    progress(1)
            arr.flush()
            del arr

        atomic_write(target, write)
    return np.load(target, mmap_mode="r")
