"""Atomic file writes: a killed process never leaves a half-written file behind.

``atomic_write`` writes a temporary file next to the target, flushes it to disk
(``fsync``), renames it onto the target (atomic on POSIX) and flushes the directory, so
after a crash or a power cut the target is the old file or the new one. The new file gets
the mode a plain ``open(path, "w")`` would give it: the existing file's mode, else
0o666 minus the umask (``mkstemp``'s 0o600 would hide results from a group). Temporary
names carry the host and process id, so a later write can remove the ones a killed
writer left (``clean_stale``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

_HOST = socket.gethostname().replace(".", "-")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{_HOST}."


def _create_temp(path: Path) -> Path:
    """An empty, exclusively created temporary file beside ``path``, with the mode the
    final file should have (the kernel applies the umask to a new file's 0o666)."""
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o7777
    while True:
        tmp = path.parent / f"{_temp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        if mode is not None:  # an existing target keeps its mode
            os.chmod(tmp, mode)
        return tmp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of ``path`` whose writer (on this host) is gone, e.g.
    killed by ``kill -9`` mid-write; returns them. Lists ``path``'s folder once."""
    path = Path(path)
    prefix, removed = _temp_prefix(path), []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            pid = name[len(prefix) :].split(".", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:  # some file systems cannot sync a directory; a file must sync
            raise
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike, write: Callable[[str], None], clean_stale: bool = False
) -> Path:
    """Call ``write(tmp_path)`` then flush and rename onto ``path``. ``clean_stale``:
    first remove the temporary files that killed writers of ``path`` left (this lists the
    folder, so leave it off for folders of many files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean_stale:
        remove_stale_temps(path)
    tmp = _create_temp(path)
    try:
        write(str(tmp))
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync(path.parent, directory=True)
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
