"""Trainer hooks. Each does one job; the trainer calls them in list order."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

from ..utils.io import write_text
from ..utils.logging import get_logger
from .checkpoint import CHECKPOINT_NAME, save_checkpoint
from .schedule import lr_factor

log = get_logger(__name__)


class Hook:
    def before_train(self, trainer) -> None: ...
    def before_epoch(self, trainer) -> None: ...
    def after_step(self, trainer, outputs: dict) -> None: ...
    def after_epoch(self, trainer) -> None: ...
    def after_train(self, trainer) -> None: ...


class LRScheduleHook(Hook):
    """Sets the lr of every group before each epoch; with ``warmup_start_lr`` also after
    every warm-up step (a per-iteration ramp)."""

    def __init__(
        self,
        base_lr: float,
        warmup_epochs: int,
        milestones: list[int],
        gamma: float,
        warmup_start_lr: float | None = None,
    ):
        self.base_lr, self.warmup, self.milestones, self.gamma = (
            base_lr,
            warmup_epochs,
            milestones,
            gamma,
        )
        self.start = None if warmup_start_lr is None else warmup_start_lr / base_lr

    def _set(self, trainer, progress: float) -> None:
        f = lr_factor(trainer.epoch, self.warmup, self.milestones, self.gamma, self.start, progress)
        for g in trainer.optimizer.param_groups:
            g["lr"] = self.base_lr * g.get("lr_mult", 1.0) * f

    def before_epoch(self, trainer) -> None:
        self.done = 0
        self._set(trainer, 0.0)

    def after_step(self, trainer, outputs: dict) -> None:
        if self.start is None or trainer.epoch >= self.warmup:
            return
        self.done += 1
        total = trainer.iters_per_epoch or len(trainer.loader)
        self._set(trainer, min(self.done / max(total, 1), 1.0))


class MetricsHook(Hook):
    """Averages step outputs per epoch; writes ``metrics.jsonl`` (and TensorBoard when
    installed), both on rank 0 only; logs one line per epoch with images/s."""

    def __init__(self, run_dir: Path, log_every: int = 20, is_main: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.log_every = log_every
        self.tb = None
        if is_main:  # every rank writing events would show each scalar world_size times
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))
            except ImportError:
                pass

    def before_train(self, trainer) -> None:
        """Keep only the rows of the epochs the trainer starts from: a resumed run drops
        those written after its checkpoint (and a torn last line), a new run starts empty."""
        if not (trainer.is_main and self.path.exists()):
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            epoch = row.get("epoch") if isinstance(row, dict) else None
            if isinstance(epoch, int) and epoch <= trainer.epoch:
                keep.append(line)
        write_text(self.path, "".join(f"{line}\n" for line in keep))

    def before_epoch(self, trainer) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0
        self.images = 0
        self.t0 = self.t_last = time.perf_counter()

    def after_step(self, trainer, outputs) -> None:
        for k, v in outputs.items():
            self.sums[k] += float(v)
        self.count += 1
        self.images += trainer.last_batch_size
        self.t_last = time.perf_counter()  # evaluation after the epoch is not training time
        if self.tb is not None and trainer.step % self.log_every == 0:
            for k, v in outputs.items():
                self.tb.add_scalar(f"train/{k}", float(v), trainer.step)

    def after_train(self, trainer) -> None:
        if self.tb is not None:
            self.tb.close()

    def _terms(self, trainer, active: bool = True) -> list[str]:
        """Loss terms that entered the loss this epoch (``Method`` convention); with
        ``active=False`` also those computed as exactly 0 (e.g. ClusterNCE over one
        cluster)."""
        skip = {"loss", *getattr(trainer.method, "diagnostics", ())}
        return sorted(k for k, v in self.sums.items() if k not in skip and (v != 0 or not active))

    def after_epoch(self, trainer) -> None:
        dt = self.t_last - self.t0
        row = {
            "epoch": trainer.epoch,
            "step": trainer.step,
            "lr": trainer.optimizer.param_groups[-1]["lr"],
            "images_per_s": self.images / max(dt, 1e-9),
            "seconds": dt,
            **{k: v / max(self.count, 1) for k, v in self.sums.items()},
            "terms": self._terms(trainer),
            "terms_computed": self._terms(trainer, active=False),
        }
        row.update(trainer.epoch_extras)
        trainer.history.append(row)
        if trainer.is_main:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            parts = " ".join(
                f"{k}={v:.4g}"
                for k, v in row.items()
                if k not in ("epoch", "step") and isinstance(v, float)
            )
            log.info("epoch %d/%d %s", trainer.epoch, trainer.epochs, parts)


class CheckpointHook(Hook):
    """``last.pt`` every ``every`` epochs and at the end; with ``keep`` > 0 also
    ``epoch_N.pt`` beside it (a hard link to that save when the file system allows, so it
    costs no space until last.pt moves on), the newest ``keep`` of them kept."""

    def __init__(
        self,
        run_dir: Path,
        every: int,
        config: dict,
        fingerprint: str,
        trial: int | None,
        keep: int = 0,
    ) -> None:
        self.path = Path(run_dir) / CHECKPOINT_NAME
        self.every, self.config, self.fingerprint, self.trial = every, config, fingerprint, trial
        self.keep = keep

    def after_epoch(self, trainer) -> None:
        if trainer.is_main and (trainer.epoch % self.every == 0 or trainer.epoch == trainer.epochs):
            self._save(trainer)
            if self.keep:
                self._keep_epoch(trainer.epoch)

    def _keep_epoch(self, epoch: int) -> None:
        target = self.path.with_name(f"epoch_{epoch}.pt")
        target.unlink(missing_ok=True)
        try:
            os.link(self.path, target)
        except OSError:  # no hard links here (another device, some network file systems)
            shutil.copyfile(self.path, target)
        kept = sorted(
            (int(p.stem.removeprefix("epoch_")), p)
            for p in self.path.parent.glob("epoch_*.pt")
            if p.stem.removeprefix("epoch_").isdigit()
        )
        for _, old in kept[: -self.keep]:
            old.unlink(missing_ok=True)

    def _save(self, trainer) -> None:
        save_checkpoint(
            self.path,
            model=trainer.method,
            optimizer=trainer.optimizer,
            scaler=trainer.scaler,
            epoch=trainer.epoch,
            step=trainer.step,
            config=self.config,
            fingerprint=self.fingerprint,
            trial=self.trial,
            extra=trainer.method.extra_state(),
        )


class EvalHook(Hook):
    """Trial-0 evaluation every ``every`` epochs. Monitoring only: the reported number is
    the last epoch's full evaluation. ``select_on_test`` (paper reproduction only) also keeps
    the weights of the epoch with the best trial-0 mAP, as the community scripts do with
    ``model_best.pth``; the final evaluation then uses them and says so."""

    def __init__(
        self, every: int, evaluate_fn, select_on_test: bool = False, validation: bool = False
    ) -> None:
        self.every, self.evaluate_fn, self.select_on_test = every, evaluate_fn, select_on_test
        self.validation = validation  # evaluate_fn scores a validation split (best.pt)
        self.best_map = -1.0
        self.best_epoch: int | None = None
        self.best_state: dict | None = None

    def after_epoch(self, trainer) -> None:
        last = trainer.epoch == trainer.epochs
        if not self.every or (trainer.epoch % self.every and not last):
            return
        if last and not (self.select_on_test or self.validation):
            return  # the final full evaluation follows anyway
        table = self.evaluate_fn(trainer, quick=True)
        trainer.epoch_extras.update({f"val_{k}": v["mean"] for k, v in table.items()})
        if self.select_on_test and table["mAP"]["mean"] > self.best_map:
            self.best_map, self.best_epoch = table["mAP"]["mean"], trainer.epoch
            self.best_state = {
                k: v.detach().clone() for k, v in trainer.method.state_dict().items()
            }

    def after_train(self, trainer) -> None:
        if self.select_on_test and self.best_state is not None:
            trainer.method.load_state_dict(self.best_state)
            trainer.selected_epoch = self.best_epoch
