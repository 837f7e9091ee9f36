"""What a method is: a model plus how one training step computes its losses.

The trainer owns the loop, optimiser, schedule, checkpoints and hooks; a method only says
``training_step(batch) -> {"loss": total, ...parts}``. Unsupervised methods will add a
pseudo-label hook on top of the same interface.

Convention for the parts: every key other than ``loss`` and the method's ``diagnostics``
is a loss term, logged (unweighted) only in steps where it enters ``loss`` with a non-zero
weight. The metrics log records each epoch's active terms from them, so an ablation table
states which terms a run actually trained with.
"""

from __future__ import annotations

import torch
from torch import nn


class Method(nn.Module):
    """Base class: ``self.model`` is the network; subclasses implement ``training_step``."""

    name = "base"
    unsupervised = False  # True: the engine adds the pseudo-label hook
    diagnostics: tuple[str, ...] = ("acc",)  # step outputs that are not loss terms
    backbone_prefixes: tuple[str, ...] = ("stems.", "layers.")  # trained at lr × mult
    num_epochs: int | None = None  # the run's length, set by the trainer before training
    # False when the last optimiser step was skipped (AMP's GradScaler found non-finite
    # gradients); set by the trainer before ``after_optimizer_step``
    optimizer_stepped: bool = True

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch (0-based), also after a resume."""
        self.epoch = epoch

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise TypeError(f"{type(self).__name__} must implement training_step")

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # DDP only synchronises gradients of calls that go through forward()
        return self.training_step(batch)

    def global_batch(
        self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Under DDP with shared batches (``engine.distributed``): the model outputs and
        batch fields of every rank's rows, in the single-process batch order, the local
        rows keeping their gradient; ``images`` are not gathered. One process: unchanged."""
        from ..engine.distributed import batch_is_global, gather_rows, global_batch_order

        if not batch_is_global():
            return out, batch
        order = global_batch_order(batch["modality"] * 2 + batch["view"])

        def g(t: torch.Tensor) -> torch.Tensor:
            return gather_rows(t)[order]

        fields = {k: g(v) for k, v in batch.items() if k != "images"}
        return {k: g(v) for k, v in out.items()}, fields

    def extra_state(self) -> dict:
        """State outside ``state_dict`` that a resumed run needs (tensors, numbers and
        strings only: checkpoints are loaded with ``weights_only=True``)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Inverse of ``extra_state``, called after the weights are restored."""

    def param_groups(self, lr: float, backbone_lr_mult: float) -> list[dict]:
        """Parameters under ``backbone_prefixes`` at ``lr × backbone_lr_mult``, the rest
        (BNNeck, classifier, method heads) at ``lr``. AGW, CAJ and MMM add ``non_local.``
        to the prefixes: their optimisers give the full rate to the BNNeck and the
        classifier only."""
        backbone_ids = {
            id(p) for n, p in self.model.named_parameters() if n.startswith(self.backbone_prefixes)
        }
        backbone = [p for p in self.parameters() if id(p) in backbone_ids and p.requires_grad]
        rest = [p for p in self.parameters() if id(p) not in backbone_ids and p.requires_grad]
        return [
            {"params": backbone, "lr": lr * backbone_lr_mult, "lr_mult": backbone_lr_mult},
            {"params": rest, "lr": lr, "lr_mult": 1.0},
        ]
