"""``vireid train CONFIG [key=value ...] [--resume auto|PATH] [--nproc N]``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from .common import console, friendly_errors


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """Re-run this command under torchrun with ``nproc`` processes on this machine."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "vireid",
        *argv,
    ]
    return subprocess.call(cmd)


@friendly_errors
def train_cmd(
    config: Path = typer.Argument(..., help="YAML recipe"),
    overrides: list[str] = typer.Argument(None, help="key.path=value overrides"),
    resume: str = typer.Option(None, help="'auto' (the run's last.pt) or a path"),
    nproc: int = typer.Option(1, help="processes (DDP via torchrun)"),
) -> None:
    """Train a model, then evaluate the last epoch on every trial of eval.protocol."""
    from ..config import load_config

    cfg = load_config(config, overrides or [])  # validate before spawning anything
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        argv = ["train", str(config), *(overrides or [])]
        if resume:
            argv += ["--resume", resume]
        raise typer.Exit(launch_torchrun(nproc, argv))
    from ..engine.run import train
    from ..evaluation.results import results_table

    out = train(cfg, resume)
    if int(os.environ.get("RANK", "0")) == 0:
        console.print(results_table(out["result"]))
        console.print(f"run directory: {out['run_dir']}", highlight=False)
