"""Shared CLI plumbing: turn the project's own errors into one red line and exit code 2."""

from __future__ import annotations

import functools
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from ..registry import RegistryError
from ..utils.logging import setup_logging
from ..utils.optional import MissingExtraError

# Off a terminal (a log file, CI, a pipe) rich would squeeze tables into 80 columns; a wide
# console keeps a results table's rows whole (COLUMNS, when set, still wins).
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
# soft_wrap: paths in error messages stay on one line (copyable, greppable)
err_console = Console(stderr=True, soft_wrap=True)
# ConfigError, DatasetError, CheckpointError and WeightsError are ValueErrors: naming them
# here would import torch before the command has parsed its arguments
USER_ERRORS = (
    RegistryError,
    FileNotFoundError,
    ValueError,
    MissingExtraError,
)


def friendly_errors(fn):
    """Expected user errors print as ``error: …`` (no traceback) and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        setup_logging()
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            print_error(str(e))
            raise typer.Exit(2) from None
        except ModuleNotFoundError as e:
            if e.name != "faiss":
                raise
            print_error(FAISS_MISSING)
            raise typer.Exit(2) from None

    return wrapper


FAISS_MISSING = (
    "faiss is not installed: pip install 'vireid[faiss]' (faiss-cpu), or a faiss-gpu wheel "
    "for search on the GPU (docs/deploy.md#faiss-on-the-gpu)"
)


def print_error(message: str) -> None:
    """``error: message`` in red on stderr; the message is plain text, so brackets in it
    (paths, ``[epoch 3]``, a list's repr) print as they are instead of being read as
    rich markup."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
