"""Per-iteration training progress: loss terms, images/s and time left.

On a terminal (rank 0) a live rich bar; off one (a log file, CI, ``make demo > f``) a
line every ``train.log_every`` iterations and at least every ``PROGRESS_SECONDS``. Either
way the lines go to the run's ``log.txt`` (on a terminal only there, as the bar shows
them). The loss terms are running means over the epoch so far, as AGW's and
cluster-contrast's ``AverageMeter`` print them.
"""

from __future__ import annotations

import time
from collections import defaultdict

from ..utils.logging import get_logger
from ..utils.progress import format_seconds, live_terminal, progress_seconds
from .hooks import Hook

log = get_logger("vireid.progress")


class ProgressHook(Hook):
    def __init__(self, every: int, terminal: bool | None = None) -> None:
        self.every = every
        self.terminal = live_terminal() if terminal is None else terminal
        self.bar = None
        self.run_start = None

    # ------------------------------------------------------------------ bookkeeping
    def before_train(self, trainer) -> None:
        self.run_start = time.monotonic()
        self.run_steps = 0  # steps taken in this process (a resumed run starts at 0)
        self.epochs_left_at_start = trainer.epochs - trainer.epoch

    def before_epoch(self, trainer) -> None:
        self.total = trainer.iters_per_epoch or _len(trainer.loader)
        self.done = 0
        self.images = 0
        self.sums: dict[str, float] = defaultdict(float)
        self.epoch_start = self.last_line = time.monotonic()
        if trainer.is_main and self.terminal and not trainer.skip_epoch:
            self._open_bar(trainer)

    def after_step(self, trainer, outputs: dict) -> None:
        self.done += 1
        self.run_steps += 1
        self.images += trainer.last_batch_size
        skip = {"loss", *getattr(trainer.method, "diagnostics", ())}
        for k, v in outputs.items():
            if k == "loss" or k not in skip:
                self.sums[k] += float(v)
        if not trainer.is_main:
            return
        line = None
        now = time.monotonic()
        if self.done % self.every == 0 or now - self.last_line >= progress_seconds():
            line = self.line(trainer, now)
            self.last_line = now
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, stats=self.stats(now))
            if line:
                log.info(line, extra={"file_only": True})
        elif line:
            log.info(line)

    def after_epoch(self, trainer) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    after_train = after_epoch

    # ------------------------------------------------------------------ text
    def terms(self) -> str:
        n = max(self.done, 1)
        loss = self.sums.get("loss", 0.0) / n
        parts = [f"{k} {v / n:.4g}" for k, v in sorted(self.sums.items()) if k != "loss" and v]
        return f"loss {loss:.4g}" + (f" ({', '.join(parts)})" if parts else "")

    def stats(self, now: float) -> str:
        dt = max(now - self.epoch_start, 1e-9)
        return f"{self.terms()} · {self.images / dt:.1f} img/s · ETA {self.eta(now)}"

    def eta(self, now: float) -> str:
        """Time left in this epoch, and in the run (the run's mean time per step so far,
        clustering and evaluation included, times the steps left)."""
        rate = (now - self.epoch_start) / max(self.done, 1)
        epoch_left = rate * max(self.total - self.done, 0) if self.total else 0.0
        steps_run = max(self.run_steps, 1)
        per_step = (now - self.run_start) / steps_run
        steps_per_epoch = self.total or steps_run
        remaining = self.epochs_left_at_start * steps_per_epoch - self.run_steps
        return f"{format_seconds(epoch_left)} (run {format_seconds(per_step * remaining)})"

    def line(self, trainer, now: float) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"epoch {trainer.epoch + 1}/{trainer.epochs} iter {self.done}{of} · " + self.stats(
            now
        )

    def _open_bar(self, trainer) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(
            TextColumn(f"epoch {trainer.epoch + 1}/{trainer.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            transient=True,
        )
        self.task = self.bar.add_task("train", total=self.total or None, stats="")
        self.bar.start()


def _len(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None
