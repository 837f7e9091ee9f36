"""Rich logging that only speaks on rank 0 (torch.distributed's rank, or RANK env var)."""

from __future__ import annotations

import logging
import os
import sys

from rich.logging import RichHandler

_CONFIGURED = False


def get_rank() -> int:
    # a process group exists only once torch is imported: asking earlier would import it
    # (seconds) in every command, even one that only prints an error
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def setup_logging(level: str | int = "INFO") -> None:
    """Route the ``vireid`` logger through rich on rank 0; other ranks log warnings only."""
    global _CONFIGURED
    logger = logging.getLogger("vireid")
    if get_rank() != 0:
        logger.setLevel(logging.WARNING)
    else:
        logger.setLevel(level)
    if not _CONFIGURED:
        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        _CONFIGURED = True


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("vireid") else f"vireid.{name}")
