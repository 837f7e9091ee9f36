"""Errors raised by dataset readers. Each names the file and what was expected."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """A dataset file or folder is missing or malformed."""


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(
            f"{what}: expected a directory at {path}, found "
            f"{'a file' if path.exists() else 'nothing'}"
        )
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(
            f"{what}: expected a file at {path}, found "
            f"{'a directory' if path.exists() else 'nothing'}"
        )
    return path
