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


def _smoke(config, overrides, root, synthetic, steps, nproc) -> int:
    if nproc > 1:
        raise ValueError("--smoke runs in one process; drop --nproc")
    from ..engine.smoke import run_smoke
    from .smoke_view import render_smoke

    report = run_smoke(config, overrides, root=root, synthetic=synthetic, steps=steps)
    console.print(render_smoke(report))
    return 0 if report.ok else 1


@friendly_errors
def train_cmd(
    config: Path = typer.Argument(..., help="YAML recipe"),
    overrides: list[str] = typer.Argument(None, help="key.path=value overrides"),
    resume: str = typer.Option(None, help="'auto' (the run's last.pt) or a path"),
    overwrite: bool = typer.Option(
        False, help="discard the run already in output_dir (default: refuse to train over it)"
    ),
    nproc: int = typer.Option(1, help="processes (DDP via torchrun)"),
    smoke: bool = typer.Option(
        False, help="the recipe as shipped for a few steps per stage, on a few identities"
    ),
    root: Path = typer.Option(None, help="--smoke: dataset root (default: the recipe's)"),
    synthetic: bool = typer.Option(
        False, help="--smoke: a generated tree in the dataset's layout at the recipe's size"
    ),
    steps: int = typer.Option(2, min=1, help="--smoke: iterations per stage"),
) -> None:
    """Train a model, then evaluate the last epoch on every trial of eval.protocol.
    With --smoke: a few steps of every stage, a resume and an evaluation, then a report."""
    if smoke:
        raise typer.Exit(_smoke(config, overrides or [], root, synthetic, steps, nproc))
    from ..config import load_config

    cfg = load_config(config, overrides or [])  # validate before spawning anything
    from ..engine.run_dir import claim_run_dir, preflight

    if int(os.environ.get("RANK", "0")) == 0:
        claim_run_dir(Path(cfg.output_dir), resume, overwrite)
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        preflight(cfg, resume)  # one message here, not one per process + torchrun's trace
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
