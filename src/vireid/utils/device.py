"""Device names from configs and options ("auto", "cpu", "cuda", "cuda:1")."""

from __future__ import annotations

import torch


class DeviceError(ValueError, RuntimeError):
    """A configured device this machine does not have (a user error: one line at the CLI)."""


def pick_device(name: str, key: str = "train.device") -> torch.device:
    """``auto`` = the GPU when torch sees one; ``key`` names the setting in errors."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"{key}={name}, but torch sees no CUDA device")
    return torch.device(name)
