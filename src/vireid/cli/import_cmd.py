"""``vireid import SRC OUT --format agw|caj|ddag|mmm``: a released community checkpoint
(AGW / CAJ / DDAG / MMM, ADCA / PGM / cluster-contrast stage) as a vireid checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, friendly_errors
from .synth_cmd import parse_size


@friendly_errors
def import_cmd(
    src: Path = typer.Argument(..., help="the community checkpoint (.t / .pth / .pth.tar)"),
    out: Path = typer.Argument(..., help="vireid checkpoint to write (.pt)"),
    fmt: str = typer.Option(
        "agw", "--format", help="agw | caj | ddag | mmm (sets the test flip as their test script)"
    ),
    dataset: str = typer.Option("sysu_mm01", help="what it was trained on: sysu_mm01|regdb|llcm"),
    root: Path = typer.Option(None, help="dataset root to store (else --root / $VIREID_DATA)"),
    trial: int = typer.Option(None, help="RegDB: the split it was trained on (1-10)"),
    size: str = typer.Option(None, help="test image size HxW (default 288x144)"),
    pooling: str = typer.Option(
        None, help="gem | avg (default: gem with non-local blocks, as AGW's 'agw' method)"
    ),
    flip: bool = typer.Option(None, help="flip-averaged test features (default: --format's)"),
    drop_heads: bool = typer.Option(False, help="DDAG: import the global branch only"),
) -> None:
    """Map a community ``embed_net`` checkpoint onto vireid's two-stream network (read
    weights-only; refused when a key maps nowhere) and write a checkpoint that
    ``vireid eval`` / ``export`` / ``train.init_from`` accept."""
    from ..engine.imported import import_checkpoint

    if out.suffix != ".pt":
        raise ValueError(f"{out}: expected a .pt output path (a vireid checkpoint)")
    path, cfg, s = import_checkpoint(
        src,
        out,
        fmt,
        dataset,
        drop_heads,
        root=root,
        trial=trial,
        size=parse_size(size) if size else None,
        pooling=pooling,
        flip=flip,
    )
    m = cfg.model
    console.print(
        f"wrote {path}: {s['tensors']} tensors ({s['dropped']} unused by the source dropped); "
        f"{m.arch}, non_local {'on' if m.non_local else 'off'}, pooling {m.pooling}, "
        f"{s['num_classes']} classes, flip {'on' if cfg.eval.flip else 'off'}, "
        f"{cfg.data.height}x{cfg.data.width}, protocol {cfg.eval.protocol}",
        highlight=False,
    )
    console.print(f"evaluate: vireid eval {path} --protocol {cfg.eval.protocol}", highlight=False)
