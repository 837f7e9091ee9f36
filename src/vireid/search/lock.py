"""One writer per index file.

Every writer of an index file (``vireid index``, with or without ``--append``, and
``vireid serve`` unless ``--read-only``) holds an exclusive ``flock`` on
``<index>.lock`` beside it for as long as it may write. A second writer is refused with
a message naming the owner, which the owner wrote into the lock file (pid, host,
command, start time). The kernel drops the lock when its process ends, however it ends
(``kill -9`` included), so a crash never leaves a stale lock; the lock file itself
stays (removing it would let two processes lock two different files of one name).

Holding the lock also means that no other writer is between its temporary file and the
rename, so any ``.<index name>.*.tmp`` beside the file is a killed writer's leftover:
it is removed when the lock is taken.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..utils.logging import get_logger

log = get_logger(__name__)


class IndexBusyError(ValueError):
    """Another process writes this index file."""


def _command_line() -> str:
    """This process's command line for the lock file, with secrets left out."""
    args, hide = [], False
    for a in sys.argv[1:]:
        args.append("***" if hide else a.split("=")[0] + "=***" if a.startswith("--token=") else a)
        hide = a == "--token"
    return " ".join(["vireid", *args])[:300]


def _describe(owner: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("since", 0)))
    return (
        f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, "
        f"`{owner.get('command', '?')}`, since {since}"
    )


class IndexLock:
    """``with IndexLock(path, "vireid serve"):`` — raises ``IndexBusyError`` naming the
    owner when another process holds it."""

    def __init__(self, index_path: str | Path, command: str | None = None) -> None:
        self.index_path = Path(index_path)
        self.path = self.index_path.with_name(self.index_path.name + ".lock")
        self.command = command or _command_line()
        self._fd: int | None = None

    def acquire(self) -> IndexLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise IndexBusyError(
                f"{self.index_path}: cannot create its lock file {self.path} ({e.strerror}); "
                "a writer needs a writable folder (or start the service with --read-only)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = _describe(json.loads(os.pread(fd, 4096, 0) or b"{}"))
            except ValueError:  # the owner is still writing its name
                owner = "another process"
            os.close(fd)
            raise IndexBusyError(
                f"{self.index_path} is being written by {owner} (lock {self.path}); "
                "one writer at a time: stop it first, or serve the index with --read-only"
            ) from None
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        self._fd = fd
        self._remove_leftovers()
        return self

    def _remove_leftovers(self) -> None:
        for tmp in self.index_path.parent.glob(f".{self.index_path.name}.*.tmp"):
            try:
                size = tmp.stat().st_size
                tmp.unlink()
                log.info("removed %s (%d bytes), left by a killed writer", tmp, size)
            except OSError as e:
                log.warning("could not remove %s, left by a killed writer: %s", tmp, e)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> IndexLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()
