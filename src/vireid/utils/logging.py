"""Logging that only speaks on rank 0 (torch.distributed's rank, or RANK env var): rich on a
terminal, plain timestamped lines elsewhere; ``run_log`` copies a run's lines into its
``log.txt``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CONFIGURED = False
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_rank() -> int:
    # a process group exists only once torch is imported: asking earlier would import it
    # (seconds) in every command, even one that only prints an error
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


class _Stderr(logging.StreamHandler):
    """Plain lines on whatever ``sys.stderr`` is now (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def _not_file_only(record: logging.LogRecord) -> bool:
    # lines that a live progress bar already shows on the terminal go to log.txt only
    return not getattr(record, "file_only", False)


def setup_logging(level: str | int = "INFO") -> None:
    """Route the ``vireid`` logger to stderr on rank 0 (rich on a terminal, plain
    timestamped lines off one); other ranks log warnings only."""
    global _CONFIGURED
    logger = logging.getLogger("vireid")
    logger.setLevel(logging.WARNING if get_rank() != 0 else level)
    if _CONFIGURED:
        return
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT, "%H:%M:%S"))
    handler.addFilter(_not_file_only)
    logger.addHandler(handler)
    logger.propagate = False
    _CONFIGURED = True


@contextmanager
def run_log(path: str | os.PathLike | None) -> Iterator[None]:
    """While the block runs, every ``vireid`` log line (progress included) is appended
    to ``path`` as plain text; None: nothing is written (ranks > 0)."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("vireid")
    level = logger.level
    if level == logging.NOTSET or level > logging.INFO:
        logger.setLevel(logging.INFO)  # a library caller who never set logging up
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("vireid") else f"vireid.{name}")
