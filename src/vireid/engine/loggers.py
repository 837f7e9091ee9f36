"""Optional experiment trackers (``train.logger: wandb | mlflow``), off by default and
behind extras (``vireid[wandb]``, ``vireid[mlflow]``): step losses every
``train.log_every`` iterations, each epoch's row of ``metrics.jsonl``, the resolved config
and the final results. Rank 0 only; the run folder stays the record of truth."""

from __future__ import annotations

from pathlib import Path

from ..utils.optional import require
from .hooks import Hook


def _numbers(row: dict, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}{k}": float(v)
        for k, v in row.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _flat(d: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = str(v)[:250]  # MLflow caps a parameter's value
    return out


class TrackerHook(Hook):
    """Sends what ``MetricsHook`` records to W&B or MLflow. ``finish(table)`` (called
    after the final evaluation) logs the results and closes the tracker's run."""

    def __init__(self, kind: str, project: str, run_dir: Path, config: dict, every: int):
        self.kind, self.every = kind, every
        if kind == "wandb":
            self.lib = require("wandb", "wandb")
            self.run = self.lib.init(
                project=project, name=Path(run_dir).name, dir=str(run_dir), config=config
            )
        elif kind == "mlflow":
            self.lib = require("mlflow", "mlflow")
            self.lib.set_experiment(project)
            self.run = self.lib.start_run(run_name=Path(run_dir).name)
            self.lib.log_params(_flat(config))
        else:
            raise ValueError(f"train.logger={kind!r}: expected none, wandb or mlflow")

    def _log(self, values: dict[str, float], step: int) -> None:
        if self.kind == "wandb":
            self.lib.log(values, step=step)
        else:
            self.lib.log_metrics(values, step=step)

    def after_step(self, trainer, outputs: dict) -> None:
        if trainer.step % self.every == 0:
            self._log({f"train/{k}": float(v) for k, v in outputs.items()}, trainer.step)

    def after_epoch(self, trainer) -> None:
        if trainer.history:
            self._log(_numbers(trainer.history[-1], "epoch/"), trainer.step)

    def finish(self, table: dict[str, dict[str, float]], step: int) -> None:
        self._log({f"test/{m}": v["mean"] for m, v in table.items()}, step)
        if self.kind == "wandb":
            self.run.finish()
        else:
            self.lib.end_run()
