"""The images to embed: any folder of images, or every test image a protocol can draw.

A folder's images take their modality from ``modality`` or from a path component that
names one (``visible``/``rgb``/``vis`` or ``infrared``/``ir``/``thermal``), their camera
from a ``cam<N>`` component (else 0) and their identity from a numeric parent folder
(else −1, unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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


def _camera_of(parts: Iterable[str]) -> int:
    for part in parts:
        digits = part[3:]
        if part.startswith("cam") and digits.isascii() and digits.isdigit():
            return int(digits)
    return 0


def collect_images(paths: Iterable[str | Path], modality: str | None = None) -> list[Sample]:
    """Samples for image files and the images under folders (recursively, sorted)."""
    forced = Modality.parse(modality) if modality else None
    out: list[Sample] = []
    for given in map(Path, paths):
        if given.is_dir():
            files = sorted(p for p in given.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
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
            parent = f.parent.name
            pid = int(parent) if parent.isascii() and parent.isdigit() else -1
            out.append(Sample(str(f), pid, _camera_of(reversed(parts)), mod))
    if not out:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {list(map(str, paths))}")
    return out


def protocol_images(protocol: str, root, trials: Iterable[int], manifest=None) -> list[Sample]:
    """Every query and gallery image of ``protocol`` over ``trials``, each once, in the
    order first drawn: what ``vireid eval --features`` needs."""
    from ..data.protocols import query_gallery

    seen: dict[str, Sample] = {}
    for t in trials:
        q, g = query_gallery(protocol, root, t, manifest)
        for s in (*q, *g):
            seen.setdefault(s.path, s)
    return list(seen.values())
