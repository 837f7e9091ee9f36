"""Shared CLI plumbing: turn the project's own errors into one red line and exit code 2."""

from __future__ import annotations

import functools
import re

import typer
from rich.console import Console
from rich.markup import escape

from ..config.loader import ConfigError
from ..data.datasets.errors import DatasetError
from ..engine.checkpoint import CheckpointError
from ..models.weights import WeightsError
from ..registry import RegistryError
from ..utils.logging import setup_logging
from ..utils.optional import MissingExtraError

console = Console()
# soft_wrap: paths in error messages stay on one line (copyable, greppable)
err_console = Console(stderr=True, soft_wrap=True)
USER_ERRORS = (
    ConfigError,
    DatasetError,
    CheckpointError,
    FloatingPointError,  # a diverging loss (NonFiniteLossError), NaN features
    WeightsError,
    RegistryError,
    FileNotFoundError,
    ValueError,
    MissingExtraError,
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
    where a file was expected, ...)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        setup_logging()
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            _fail(one_line(e))
        except OSError as e:
            if e.filename is None:
                raise
            _fail(f"{e.filename}: {e.strerror or e}")

    return wrapper


def _fail(message: str):
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(2) from None
