"""Output paths checked before the expensive work: a command that embeds a test set for
minutes must not fail at the end because ``--out`` names the wrong kind of thing."""

from __future__ import annotations

from pathlib import Path


def _first_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def require_out_dir(path: Path | None, option: str) -> None:
    """``path`` will be a directory that files are written into."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"{option} {path} is a file; expected a directory (the results are written inside it)"
        )
    above = _first_existing(path)
    if not above.is_dir():
        raise ValueError(f"{option} {path}: {above} is a file, so {path} cannot be a directory")


def require_out_file(path: Path | None, option: str) -> None:
    """``path`` will be a file (written atomically next to its final name)."""
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"{option} {path} is a directory; expected a file path")
    require_out_dir(path.parent, f"{option} {path}: the folder")
