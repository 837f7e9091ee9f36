"""Progress of long loops: a rich bar on a terminal, plain log lines elsewhere (a log
file, CI, ``make demo > f``), so no phase is silent for more than ``PROGRESS_SECONDS``.
Silent on ranks > 0."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .logging import get_logger, get_rank

# off a terminal: at most this long between two lines of one loop (VIREID_PROGRESS_SECONDS)
PROGRESS_SECONDS = 30.0
log = get_logger("vireid.progress")


def progress_seconds() -> float:
    return float(os.environ.get("VIREID_PROGRESS_SECONDS", PROGRESS_SECONDS))


def live_terminal() -> bool:
    """Whether a live bar can be drawn: rank 0 writing to a terminal."""
    return get_rank() == 0 and sys.stderr.isatty()


@contextmanager
def progress_bar(desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``. On a terminal a transient bar; off one a line
    ``desc: done/total (p %), elapsed`` whenever ``progress_seconds()`` have passed since
    the last line; on ranks > 0 nothing."""
    if get_rank() != 0:
        yield lambda n=1: None
        return
    if not sys.stderr.isatty():
        yield _timed_lines(desc, total)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*cols, TimeRemainingColumn(), transient=True) as p:
        task = p.add_task(desc, total=total)
        yield lambda n=1: p.advance(task, n)


def _timed_lines(desc: str, total: int | None) -> Callable[[int], None]:
    start = last = time.monotonic()
    done = 0
    every = progress_seconds()

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last < every:
            return
        last = now
        of = f"/{total} ({100 * done / total:.0f} %)" if total else ""
        log.info("%s: %d%s, %s", desc, done, of, format_seconds(now - start))

    return advance


def format_seconds(s: float) -> str:
    """``1:02:03`` / ``2:03``: durations in progress lines."""
    s = max(round(s), 0)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
