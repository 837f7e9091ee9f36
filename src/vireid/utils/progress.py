"""A rich progress bar that stays silent off rank 0 and when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .logging import get_rank


@contextmanager
def progress_bar(desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``. Disabled on ranks > 0 or when stderr is not a TTY."""
    if get_rank() != 0 or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    cols = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*cols, transient=True) as p:
        task = p.add_task(desc, total=total)
        yield lambda n=1: p.advance(task, n)
