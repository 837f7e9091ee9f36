"""Shared CLI plumbing: turn the project's own errors into one red line and exit code 2."""

from __future__ import annotations

import functools

import typer
from rich.console import Console

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
    WeightsError,
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
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper
