"""Per-label prototypes accumulated over an epoch's training batches: MMM's official
Intra ("self-mimic") targets (shijiangming1/MMM ``main.py``).

The official code recomputes, after every epoch, P[y] = Σ w·f / count(y) of the pre-BN
pooled feature over a pass through the training loader (training mode and augmentations,
one prototype set per visible view and one for infrared), and pulls each feature towards
its prototype during the next epoch. Here the sums are taken from the training batches
themselves (the same sampler, the same augmentations, no second pass); the weights drift
within the epoch instead of being the epoch's last. A label that no batch drew has no
prototype (the code keeps a stale or zero row); the loss skips it.
"""

from __future__ import annotations

import torch

from .memory import _gather


class EpochPrototypes:
    """``slots`` prototype sets (e.g. visible view 1, view 2, infrared) of ``num_labels``
    rows of dimension ``dim``: ``add`` during an epoch, ``finish`` at the next one's start."""

    def __init__(self, slots: int, num_labels: int, dim: int, device=None) -> None:
        self.sums = torch.zeros(slots, num_labels, dim, device=device)
        self.counts = torch.zeros(slots, num_labels, device=device)
        self.ready = torch.zeros_like(self.sums)  # (S, C, D) the prototypes in use
        self.valid = torch.zeros(slots, num_labels, dtype=torch.bool, device=device)

    @torch.no_grad()
    def add(
        self, slot: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor
    ) -> None:
        """Rows (B,) of ``slot``, ``labels`` (−1 = skipped) and confidence ``weights``;
        feats (B, D). Under DDP every rank adds every rank's rows (equal batch sizes), so
        the sums agree on all ranks and in the checkpoint."""
        slot, feats, labels, weights = (_gather(t) for t in (slot, feats, labels, weights))
        keep = (labels >= 0).float()
        idx = (slot, labels.clamp_min(0))
        self.sums.index_put_(
            idx, feats.float() * (weights.float() * keep)[:, None], accumulate=True
        )
        self.counts.index_put_(idx, keep, accumulate=True)

    @torch.no_grad()
    def finish(self) -> None:
        """The accumulated sums become the prototypes in use; accumulation restarts."""
        self.valid = self.counts > 0
        self.ready = self.sums / self.counts.clamp_min(1)[..., None]
        self.sums.zero_()
        self.counts.zero_()

    def state(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k).cpu() for k in ("sums", "counts", "ready", "valid")}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            setattr(self, k, v.to(self.sums.device))
