"""Shared CLI plumbing: turn the project's own errors into one red line and exit code 2."""

from __future__ import annotations

import functools
import os
import re
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
    FloatingPointError,  # a diverging loss (NonFiniteLossError), NaN features
    RegistryError,
    FileNotFoundError,
    ValueError,
    MissingExtraError,
)
FAISS_MISSING = (
    "faiss is not installed: pip install 'vireid[faiss]' (faiss-cpu), or a faiss-gpu wheel "
    "for search on the GPU (docs/deploy.md#faiss-on-the-gpu)"
)


def one_line(e: BaseException) -> str:
    """The message of ``e``; for an error re-raised from a DataLoader worker (whose message
    is the worker's whole traceback) the original error's own message."""
    text = str(e)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        text = re.sub(r"^[\w.]+: ", "", last)
    return " ".join(text.split()) if "\n" in text and "invalid config" not in text else text


def friendly_errors(fn):
    """Expected user errors print as ``error: …`` (no traceback) and exit with code 2; so
    does an operating-system error about a named file (permission denied, a directory
    where a file was expected, ...) and a missing faiss."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        setup_logging()
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            _fail(one_line(e))
        except ModuleNotFoundError as e:
            if e.name != "faiss":
                raise
            _fail(FAISS_MISSING)
        except OSError as e:
            if e.filename is None:
                raise
            _fail(f"{e.filename}: {e.strerror or e}")

    return wrapper


def print_error(message: str) -> None:
    """``error: message`` in red on stderr; the message is plain text, so brackets in it
    (paths, ``[epoch 3]``, a list's repr) print as they are instead of being read as
    rich markup."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def _fail(message: str):
    print_error(message)
    raise typer.Exit(2) from None
