"""Atomic file writes: a killed process never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same directory, so the rename
    is atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> Path:
    def _w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent, default=str)
            f.write("\n")

    return atomic_write(path, _w)


def write_text(path: str | os.PathLike, text: str) -> Path:
    def _w(tmp: str) -> None:
        Path(tmp).write_text(text)

    return atomic_write(path, _w)


def arrays_to_tensors(obj):
    """NumPy arrays → tensors, recursively through dicts/lists (for checkpoints, which
    are loaded with ``weights_only=True`` and so cannot hold NumPy objects)."""
    import numpy as np
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: arrays_to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(arrays_to_tensors(v) for v in obj)
    return obj


def tensors_to_arrays(obj):
    """Inverse of ``arrays_to_tensors``."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.cpu().numpy()
    if isinstance(obj, dict):
        return {k: tensors_to_arrays(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(tensors_to_arrays(v) for v in obj)
    return obj
