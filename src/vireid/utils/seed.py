"""One call seeds Python, NumPy and torch (CPU and CUDA). RNG states for resuming are
saved and restored by ``vireid.engine.checkpoint`` (in a ``weights_only``-safe form)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed every RNG the project uses. ``deterministic`` also asks torch for
    deterministic kernels (slower on GPU; CPU training is deterministic already)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
