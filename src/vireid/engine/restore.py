"""Rebuild a trained model from a checkpoint (for ``vireid eval`` / ``export`` / ``index``
and ``FeatureExtractor``), and name the weights it holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..config import RunCfg, validate_config
from ..config.loader import ConfigError
from ..models import build_model
from .checkpoint import CheckpointError, check_shapes, checkpoint_path, load_checkpoint


def model_from_checkpoint(path) -> tuple[object, RunCfg, dict]:
    path = checkpoint_path(path)
    state = load_checkpoint(path)
    try:
        cfg = validate_config(state["config"])
    except ConfigError as e:
        detail = " ".join(str(e).split())
        raise CheckpointError(f"{path}: the stored config is invalid: {detail}") from None
    sd = {k.removeprefix("model."): v for k, v in state["model"].items() if k.startswith("model.")}
    num_classes = sd["classifier.weight"].shape[0] if "classifier.weight" in sd else 0
    model = build_model(cfg.model.model_copy(update={"pretrained": None}), num_classes)
    m = cfg.model
    what = f"its stored config (model.arch={m.arch}, model.width={m.width:g})"
    check_shapes(path, sd, model.state_dict(), what)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit the configured model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model, cfg, state


def load_model(checkpoint: str | Path, device: str | None = None):
    """(model in eval mode on its device, config, checkpoint state, device); ``device``
    None = the checkpoint's ``train.device``."""
    from ..utils.device import pick_device

    model, cfg, state = model_from_checkpoint(checkpoint)
    dev = pick_device(device or cfg.train.device)
    return model.to(dev).eval(), cfg, state, dev


def model_id(state: dict) -> str:
    """A short digest of the model weights (features of different weights never mix)."""
    h = hashlib.sha256()
    for k in sorted(state["model"]):
        t = state["model"][k]
        h.update(k.encode())
        if isinstance(t, torch.Tensor):
            h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
