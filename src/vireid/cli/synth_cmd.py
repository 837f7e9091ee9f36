"""``vireid synth``: write the built-in synthetic benchmark in an official layout."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer

from ..data.synthetic.spec import FACTORS, SynthSpec
from .common import console, friendly_errors


class Layout(str, Enum):
    sysu = "sysu"
    regdb = "regdb"
    llcm = "llcm"


def parse_size(size: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {size!r}: expected HxW, e.g. 128x64") from None
    return h, w


D = SynthSpec()


@friendly_errors
def synth_cmd(
    layout: Layout = typer.Option(Layout.sysu, help="on-disk layout to write"),
    out: Path = typer.Option(
        ..., help="output directory (the dataset root), or a .png with --sheet"
    ),
    ids: int = typer.Option(D.ids, help="number of identities"),
    seed: int = typer.Option(D.seed),
    size: str = typer.Option(f"{D.height}x{D.width}", help="image size HxW"),
    modality_gap: float = typer.Option(
        D.modality_gap, help="0: infrared follows colour … 1: unrelated"
    ),
    view_diversity: float = typer.Option(D.view_diversity, help="0: all views alike … 1: distinct"),
    view_shift: float = typer.Option(D.view_shift, help="0: same view mix in both modalities"),
    camera_shift: float = typer.Option(D.camera_shift, help="0: identical cameras … 1: strong"),
    difficulty: float = typer.Option(D.difficulty, help="pose, occlusion, noise, look-alikes"),
    sheet: str | None = typer.Option(
        None, help="write a contact sheet PNG to OUT instead: 'spec' or a factor name to sweep"
    ),
) -> None:
    """Generate a synthetic VI-ReID dataset (a proxy: its numbers say nothing about
    SYSU-MM01 accuracy)."""
    from ..data.synthetic import write_llcm, write_regdb, write_sysu
    from ..data.synthetic.sheet import contact_sheet
    from ..utils.progress import progress_bar

    h, w = parse_size(size)
    spec = SynthSpec(
        ids=ids,
        seed=seed,
        height=h,
        width=w,
        modality_gap=modality_gap,
        view_diversity=view_diversity,
        view_shift=view_shift,
        camera_shift=camera_shift,
        difficulty=difficulty,
    )
    if sheet is not None:
        if sheet != "spec" and sheet not in FACTORS:
            raise ValueError(f"--sheet {sheet!r}: expected 'spec' or one of {', '.join(FACTORS)}")
        path = contact_sheet(out, spec, None if sheet == "spec" else sheet)
        console.print(f"wrote {path}", highlight=False)
        return
    writer = {Layout.sysu: write_sysu, Layout.regdb: write_regdb, Layout.llcm: write_llcm}[layout]
    t0 = time.perf_counter()
    with progress_bar(f"writing {layout.value} layout", None) as adv:
        stats = writer(out, spec, progress=adv)
    dt = time.perf_counter() - t0
    console.print(
        f"wrote {stats['images']} images of {stats['identities']} identities to "
        f"{out} ({stats['images'] / dt:.0f} images/s)",
        highlight=False,
    )
