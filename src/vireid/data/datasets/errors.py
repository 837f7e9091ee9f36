"""Errors raised by dataset readers. Each names the file and what was expected."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """A dataset file or folder is missing or malformed."""


def _require(path: Path, what: str, want_dir: bool) -> Path:
    if path.is_dir() if want_dir else path.is_file():
        return path
    kind, other = ("a directory", "a file") if want_dir else ("a file", "a directory")
    found = other if path.exists() else "nothing"
    raise DatasetError(f"{what}: expected {kind} at {path}, found {found}")


def require_dir(path: Path, what: str) -> Path:
    return _require(path, what, want_dir=True)


def require_file(path: Path, what: str) -> Path:
    return _require(path, what, want_dir=False)


def int64(value: int, what: str, where: str) -> int:
    """``value`` if it fits the 64-bit integers ids and cameras are stored as."""
    if not -(2**63) <= value < 2**63:
        raise DatasetError(f"{where}: {what} {value} does not fit a 64-bit integer")
    return value
