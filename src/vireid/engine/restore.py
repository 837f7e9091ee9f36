"""Rebuild a trained model from a checkpoint (for ``vireid eval`` / ``export``)."""

from __future__ import annotations

from ..config import RunCfg, validate_config
from ..models import build_model
from .checkpoint import CheckpointError, load_checkpoint


def model_from_checkpoint(path) -> tuple[object, RunCfg, dict]:
    state = load_checkpoint(path)
    cfg = validate_config(state["config"])
    sd = {k.removeprefix("model."): v for k, v in state["model"].items() if k.startswith("model.")}
    num_classes = sd["classifier.weight"].shape[0] if "classifier.weight" in sd else 0
    model = build_model(cfg.model.model_copy(update={"pretrained": None}), num_classes)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit the configured model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model, cfg, state
