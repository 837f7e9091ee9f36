"""What ``vireid train`` checks before it starts: a run directory holding another run is
never overwritten silently, a resumed run has epochs left to train, and (for ``--nproc``)
the dataset is readable before any process is spawned."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..config import RunCfg
from .checkpoint import CHECKPOINT_NAME, CheckpointError, checkpoint_path, load_checkpoint

# the files one run writes into its directory (config.yaml/env.json are rewritten freely)
RUN_FILES = (CHECKPOINT_NAME, "metrics.jsonl", "results.json", "results.csv")
# also discarded by --overwrite: the old run's log and the checkpoints kept beside last.pt
SIDE_FILES = ("log.txt", "best.pt", "best.json")


def claim_run_dir(run_dir: Path, resume: str | None, overwrite: bool) -> None:
    """Refuse to train into ``run_dir`` when it holds a run, unless the run is resumed or
    ``overwrite`` is asked for; with ``overwrite`` the old run's files are deleted first
    (so a crash of the new run never leaves the old results looking current)."""
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite discards it: give one")
    found = [f for f in RUN_FILES if (run_dir / f).exists()]
    if not found or resume:
        return
    if not overwrite:
        raise ValueError(
            f"{run_dir} already holds a run ({', '.join(found)}); pass --resume auto to "
            "continue it, --overwrite to discard it, or another output_dir="
        )
    old = [run_dir / f for f in (*found, *SIDE_FILES)] + sorted(run_dir.glob("epoch_*.pt"))
    for path in old:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def resume_checkpoint(cfg: RunCfg, resume: str | None) -> Path | None:
    """The checkpoint ``--resume`` names (``auto``: the run's ``last.pt`` when present)."""
    if not resume:
        return None
    if resume == "auto":
        path = Path(cfg.output_dir) / CHECKPOINT_NAME
        return path if path.is_file() else None
    return checkpoint_path(resume)


def check_epochs_left(path: Path, done: int, epochs: int) -> None:
    """A checkpoint past ``train.epochs`` would silently evaluate instead of training."""
    if done > epochs:
        raise CheckpointError(
            f"{path} has trained {done} epochs but train.epochs={epochs}: nothing to "
            f"train; pass train.epochs > {done} to continue, or evaluate it with "
            f"`vireid eval {path}`"
        )


def preflight(cfg: RunCfg, resume: str | None) -> None:
    """What every process would fail on, checked once in the launching process: the
    dataset tree and the checkpoint to resume from."""
    from ..data.datasets import build_dataset

    build_dataset(cfg.data.dataset)
    path = resume_checkpoint(cfg, resume)
    if path is not None:
        check_epochs_left(path, load_checkpoint(path)["epoch"], cfg.train.epochs)
