"""Reading an index file without trusting it.

An index file is an ``.npz`` (a zip of ``.npy`` arrays) that may come from anywhere: a
truncated copy, another tool, a crafted upload. ``read_index_file`` opens it member by
member and checks each array's declared size against the bytes the zip really holds
before allocating it (``np.load`` allocates whatever a header declares), so a bad file
costs at most its own size in memory and ends in one ``IndexFileError`` line naming it;
then ``check_arrays`` checks types and values (finite features, integer labels, known
modalities) so that nothing downstream meets a value it cannot store or rank.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from ..data.records import Modality

FEATURE_KEYS = ("feats", "pids", "camids", "modality", "paths")
HINT = "re-run `vireid index` to write it again"


class IndexFileError(ValueError):
    """An index (or features) file that cannot be used; the message names it."""


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound from here
        return 2**62


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with z.open(info) as fp:
        version = npy.read_magic(fp)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = reader(fp)
        if dtype.hasobject:
            raise ValueError("holds Python objects (pickles are never loaded)")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared != info.file_size - fp.tell():  # before any allocation of that size
            raise ValueError(
                f"declares {declared:,} bytes of data but holds {info.file_size - fp.tell():,}"
            )
        out = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        view, got = memoryview(out.reshape(-1, order="A")).cast("B"), 0
        while got < declared:  # the zip checks its CRC when the member's end is read
            n = fp.readinto(view[got:])
            if not n:
                raise EOFError(f"ends after {got:,} of {declared:,} bytes")
            got += n
        if fp.read(1):
            raise ValueError("holds more data than it declares")
    return out


def read_index_file(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an index / features file, each checked before it is allocated.
    Raises ``FileNotFoundError`` or ``IndexFileError`` (one line naming ``path``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"index file {path} does not exist")
    if path.is_dir():
        raise IndexFileError(f"{path} is a folder; expected an index file (.npz)")
    what = f"{path}: not a readable index file"
    try:
        if path.stat().st_size == 0:
            raise IndexFileError(f"{path} is empty (0 bytes); {HINT}")
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            total = sum(i.file_size for i in infos)
            if total > _memory_bytes():
                raise IndexFileError(
                    f"{what} (it declares {total / 2**30:.1f} GiB of arrays, more than this "
                    "machine's memory)"
                )
            data = {}
            for info in infos:
                name = info.filename.removesuffix(".npy")
                if not info.filename.endswith(".npy") or name in data:
                    raise IndexFileError(f"{what} (unexpected member {info.filename!r})")
                try:
                    data[name] = _read_member(z, info)
                except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                    raise IndexFileError(f"{what} (array {name!r} {e}); {HINT}") from None
    except IndexFileError:
        raise
    except PermissionError as e:
        raise IndexFileError(f"{path}: cannot read it ({e.strerror})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise IndexFileError(f"{what} (truncated or not an .npz: {e}); {HINT}") from None
    check_arrays(path, data)
    return data


def _is(a: np.ndarray, kinds: str) -> bool:
    return a.dtype.kind in kinds


def check_arrays(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """Types, shapes and values an index can hold; ``IndexFileError`` naming the array."""
    missing = [k for k in FEATURE_KEYS if k not in data]
    if missing:
        raise IndexFileError(f"{path}: missing arrays {missing}; expected {list(FEATURE_KEYS)}")
    feats = data["feats"]
    if feats.ndim != 2 or feats.shape[1] == 0 or not _is(feats, "f"):
        raise IndexFileError(
            f"{path}: 'feats' is {feats.dtype} of shape {feats.shape}; expected float (N, D), D ≥ 1"
        )
    n = len(feats)
    for key, kinds, what in (
        ("pids", "iu", "integers"),
        ("camids", "iu", "integers"),
        ("modality", "U", "strings"),
        ("paths", "U", "strings"),
    ):
        a = data[key]
        if a.shape != (n,) or not _is(a, kinds):
            raise IndexFileError(
                f"{path}: '{key}' is {a.dtype} of shape {a.shape}; expected {n} {what}"
            )
        if _is(a, "u") and n and a.max() > np.iinfo(np.int64).max:
            raise IndexFileError(f"{path}: '{key}' holds {a.max()}, past the int64 range")
    known = {m.value for m in Modality}
    odd = sorted(set(np.unique(data["modality"]).tolist()) - known)
    if odd:
        raise IndexFileError(f"{path}: 'modality' holds {odd[:3]}; expected {sorted(known)}")
    for key in ("model_id", "index_spec"):
        if key in data and (data[key].shape != () or not _is(data[key], "U")):
            raise IndexFileError(f"{path}: '{key}' is not one string")
    bad = np.flatnonzero(~np.isfinite(feats).all(axis=1))
    if len(bad):
        raise IndexFileError(
            f"{path}: {len(bad)} of {n} rows of 'feats' hold NaN or infinite values (first: row "
            f"{bad[0]}, {data['paths'][bad[0]]}); such rows can never be ranked; {HINT}"
        )
