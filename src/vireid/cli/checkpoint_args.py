"""What several commands do with a checkpoint argument: load the model onto a device,
pick the protocol trials it may be evaluated on, and name the weights it holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def parse_trials(text: str) -> str | int:
    if text == "all":
        return "all"
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"--trials {text!r}: expected 'all' or a number")
    return int(text)


def load_model(checkpoint: Path, device: str | None = None):
    """(model in eval mode on its device, config, checkpoint state, device)."""
    from ..engine.restore import model_from_checkpoint
    from ..utils.device import pick_device

    model, cfg, state = model_from_checkpoint(checkpoint)
    dev = pick_device(device or cfg.train.device)
    return model.to(dev).eval(), cfg, state, dev


def checkpoint_trials(spec, checkpoint: Path, state: dict, trial: int | None, n_trials):
    """The trials a checkpoint may be evaluated on: RegDB models only on the split they
    were trained on (another split's test ids are its training ids)."""
    from ..evaluation.evaluator import resolve_trials

    if spec.trial_is_split:
        if trial is not None and trial != state.get("trial"):
            raise ValueError(
                f"{checkpoint} was trained on RegDB trial {state.get('trial')}"
                f"; evaluating it on trial {trial} would test on training ids"
            )
        return [state.get("trial")]
    return resolve_trials(spec.name, n_trials)


def model_id(state: dict) -> str:
    """A short digest of the model weights (features of different weights never mix)."""
    h = hashlib.sha256()
    for k in sorted(state["model"]):
        t = state["model"][k]
        h.update(k.encode())
        if isinstance(t, torch.Tensor):
            h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
