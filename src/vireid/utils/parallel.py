"""Threads for the NumPy/scipy block loops (their kernels release the GIL)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor


def thread_map(fn: Callable, items: Iterable, workers: int | None = None) -> list:
    """``[fn(x) for x in items]`` on up to ``workers`` threads (default: all cores),
    results in input order so callers stay deterministic."""
    items = list(items)
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))
