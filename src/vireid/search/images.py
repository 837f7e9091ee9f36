"""The images to embed: any folder of images, or every test image a protocol can draw.

A folder's images take their modality from ``modality`` or from a path component that
names one (``visible``/``rgb``/``vis`` or ``infrared``/``ir``/``thermal``), their camera
from a ``cam<N>`` component (else 0) and their identity from a numeric parent folder
(else −1, unknown). Paths are stored absolute (``os.path.abspath``), so an index works from any
working directory.

Only JPEG, PNG and BMP are read (``check_images``: the formats the service accepts; other
Pillow plugins, EPS above all, run external programs or parse rarely exercised formats),
and a folder that cannot be read is an error, never silently skipped.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..data.datasets.base import IMAGE_SUFFIXES
from ..data.datasets.errors import DatasetError
from ..data.records import Modality, Sample


def _modality_of(parts: Iterable[str]) -> Modality | None:
    for part in parts:
        try:
            return Modality.parse(part)
        except ValueError:
            continue
    return None


INT64_MAX = 2**63 - 1


def _number(text: str, default: int) -> int:
    """A folder name as a label: decimal digits that fit the index's int64, else default."""
    if text.isascii() and text.isdigit() and int(text) <= INT64_MAX:
        return int(text)
    return default


def _camera_of(parts: Iterable[str]) -> int:
    for part in parts:
        if part.startswith("cam") and _number(part[3:], -1) >= 0:
            return int(part[3:])
    return 0


SAFE_FORMATS = ("JPEG", "PNG", "BMP")
MAX_PIXELS = 40_000_000


def _walk(folder: Path) -> list[Path]:
    """Image files under ``folder``, sorted; an unreadable sub-folder is an error."""

    def refuse(e: OSError):
        raise DatasetError(
            f"{e.filename}: cannot read this folder ({e.strerror}); fix its permissions or "
            "leave it out"
        )

    found = []
    for top, _, names in os.walk(folder, onerror=refuse):
        found += [Path(top, n) for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)


def collect_images(paths: Iterable[str | Path], modality: str | None = None) -> list[Sample]:
    """Samples for image files and the images under folders (recursively, sorted)."""
    forced = Modality.parse(modality) if modality else None
    out: list[Sample] = []
    for given in map(Path, paths):
        if given.is_dir():
            files = _walk(given)
        elif given.is_file():
            files = [given]
        else:
            raise FileNotFoundError(f"{given}: no such image file or folder")
        for f in files:
            parts = f.parts[:-1]  # the nearest folder that names a modality wins
            mod = forced or _modality_of(reversed(parts))
            if mod is None:
                raise DatasetError(
                    f"{f}: cannot tell its modality; put it under a visible/ or infrared/ "
                    "folder or pass --modality visible|infrared"
                )
            pid = _number(f.parent.name, -1)
            out.append(Sample(os.path.abspath(f), pid, _camera_of(reversed(parts)), mod))
    if not out:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {list(map(str, paths))}")
    return out


def check_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse, before decoding, a file that is not a JPEG/PNG/BMP or has more than
    ``max_pixels`` pixels (reads the header only); ``DatasetError`` naming the file."""
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: the limit below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=SAFE_FORMATS) as im:
                w, h = im.size
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file does not exist") from None
    except UnidentifiedImageError:
        raise DatasetError(f"{path}: not a JPEG, PNG or BMP image") from None
    except Image.DecompressionBombError as e:
        raise DatasetError(f"{path}: {e}") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read it ({e.strerror or e})") from None
    if w * h > max_pixels:
        raise DatasetError(
            f"{path}: {w}×{h} pixels, more than the limit of {max_pixels:,} (--max-pixels)"
        )


def check_images(samples: Sequence[Sample], max_pixels: int = MAX_PIXELS) -> None:
    for s in samples:
        check_image(s.path, max_pixels)


def protocol_images(protocol: str, root, trials: Iterable[int], manifest=None) -> list[Sample]:
    """Every query and gallery image of ``protocol`` over ``trials``, each once, in the
    order first drawn: what ``vireid eval --features`` needs. Paths absolute, like
    ``collect_images``'s: a relative ``root`` would tie the index to this working directory."""
    from ..data.protocols import query_gallery

    seen: dict[str, Sample] = {}
    for t in trials:
        q, g = query_gallery(protocol, root, t, manifest)
        for s in (*q, *g):
            path = os.path.abspath(s.path)
            if path not in seen:
                seen[path] = dataclasses.replace(s, path=path)
    return list(seen.values())
