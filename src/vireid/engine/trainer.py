"""The training loop. Methods say how one step computes losses; hooks do everything else
(schedule, metrics, checkpoints, evaluation)."""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from .hooks import Hook


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/Inf; the message names the step and the loss terms."""


class Trainer:
    def __init__(
        self,
        method: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loader,
        *,
        epochs: int,
        device: torch.device,
        hooks: list[Hook],
        amp: str = "off",
        grad_clip: float | None = None,
        channels_last: bool = False,
        iters_per_epoch: int | None = None,
        module: torch.nn.Module | None = None,
        is_main: bool = True,
    ) -> None:
        self.method, self.optimizer, self.loader = method, optimizer, loader
        self.module = module or method  # DDP wrapper when distributed
        self.epochs, self.device, self.hooks = epochs, device, hooks
        self.grad_clip, self.channels_last = grad_clip, channels_last
        self.iters_per_epoch = iters_per_epoch
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
        self.epoch = 0
        self.step = 0
        self.is_main = is_main
        self.history: list[dict] = []
        self.epoch_extras: dict = {}
        self.last_batch_size = 0
        self.skip_epoch = False  # a hook may skip an epoch (e.g. no clusters found)

    def call(self, name: str, *args) -> None:
        for h in self.hooks:
            getattr(h, name)(self, *args)

    def fit(self) -> list[dict]:
        self.method.num_epochs = self.epochs  # for schedules inside a method (MUN's β)
        self.call("before_train")
        while self.epoch < self.epochs:
            self.epoch_extras = {}
            self.skip_epoch = False
            self.call("before_epoch")
            if not self.skip_epoch:
                self.train_epoch()
            self.epoch += 1  # epochs completed; checkpoints resume from here
            self.call("after_epoch")
        self.call("after_train")
        return self.history

    def _batches(self):
        if hasattr(self.loader, "set_epoch"):  # EpochLoader / PairedLoader reseed everything
            self.loader.set_epoch(self.epoch)
        n = 0
        while True:
            for batch in self.loader:
                yield batch
                n += 1
                if self.iters_per_epoch is not None and n >= self.iters_per_epoch:
                    return
            if self.iters_per_epoch is None:
                return

    def train_epoch(self) -> None:
        self.method.train()
        self.method.set_epoch(self.epoch)
        for batch in self._batches():  # progress: engine/progress_hook.py
            outputs = self.train_step(batch)
            self.step += 1
            self.call("after_step", outputs)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self.channels_last:
            batch["images"] = batch["images"].contiguous(memory_format=torch.channels_last)
        self.last_batch_size = len(batch["images"])
        ctx = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else nullcontext()
        )
        with ctx:
            out = self.module(batch)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise NonFiniteLossError(self._non_finite(out))
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.grad_clip)
        stepped = True
        if self.scaler is not None:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            # the scaler skips the step and lowers its scale on non-finite gradients
            stepped = self.scaler.get_scale() >= scale
        else:
            self.optimizer.step()
        self.method.optimizer_stepped = stepped
        if hasattr(self.method, "after_optimizer_step"):
            self.method.after_optimizer_step()  # e.g. cluster-memory momentum updates
        return {k: v.detach() for k, v in out.items()}

    def _non_finite(self, out: dict) -> str:
        parts = {
            k: float(v.detach())
            for k, v in out.items()
            if k != "loss" and isinstance(v, torch.Tensor) and v.numel() == 1
        }
        bad = [f"{k}={v}" for k, v in parts.items() if not math.isfinite(v)]
        why = f"non-finite term(s) {', '.join(bad)}" if bad else "finite terms whose sum overflowed"
        lr = self.optimizer.param_groups[-1]["lr"]
        return (
            f"non-finite loss {float(out['loss'].detach())} at epoch "
            f"{self.epoch + 1}/{self.epochs}, step {self.step + 1}: {why}; lower train.lr "
            f"(lr now {lr:g}) or check the data"
        )
