"""``vireid synth``: write the built-in synthetic benchmark in an official layout."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer

from ..data.synthetic import SynthSpec, write_regdb, write_sysu
from ..utils.progress import progress_bar
from .common import console, friendly_errors


class Layout(str, Enum):
    sysu = "sysu"
    regdb = "regdb"


def parse_size(size: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {size!r}: expected HxW, e.g. 128x64") from None
    return h, w


@friendly_errors
def synth_cmd(
    layout: Layout = typer.Option(Layout.sysu, help="on-disk layout to write"),
    out: Path = typer.Option(..., help="output directory (the dataset root)"),
    ids: int = typer.Option(100, help="number of identities"),
    seed: int = typer.Option(0),
    size: str = typer.Option("128x64", help="image size HxW"),
    difficulty: float = typer.Option(0.5, help="0 easy … 1 hard"),
) -> None:
    """Generate a synthetic VI-ReID dataset (a proxy: its numbers say nothing about
    SYSU-MM01 accuracy)."""
    h, w = parse_size(size)
    spec = SynthSpec(ids=ids, seed=seed, height=h, width=w, difficulty=difficulty)
    writer = write_sysu if layout is Layout.sysu else write_regdb
    t0 = time.perf_counter()
    with progress_bar(f"writing {layout.value} layout", None) as adv:
        stats = writer(out, spec, progress=adv)
    dt = time.perf_counter() - t0
    console.print(
        f"wrote {stats['images']} images of {stats['identities']} identities to "
        f"{out} ({stats['images'] / dt:.0f} images/s)",
        highlight=False,
    )
