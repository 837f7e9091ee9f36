"""Checkpoints: one file with everything needed to resume exactly, written atomically and
read with ``weights_only=True`` (no arbitrary code runs when loading)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from ..utils.io import atomic_write, write_json

CHECKPOINT_NAME = "last.pt"


def _rng_state() -> dict:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | Path,
    *,
    model,
    optimizer,
    scaler,
    epoch: int,
    step: int,
    config: dict,
    fingerprint: str,
    trial: int | None,
    extra: dict | None = None,
) -> Path:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch,
        "step": step,
        "rng": _rng_state(),
        "config": json.dumps(config, default=str),
        "fingerprint": fingerprint,
        "trial": trial,
        "extra": extra or {},
    }
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or belongs to another dataset/trial."""


def load_checkpoint(path: str | Path) -> dict:
    """A ``last.pt``, or a ``.safetensors`` export read back with its JSON sidecar."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return _load_export(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or one that needs pickled objects
        raise CheckpointError(f"{path}: not a loadable vireid checkpoint ({e})") from None
    for key in ("model", "epoch", "config"):
        if key not in state:
            raise CheckpointError(f"{path}: missing {key!r}; not a vireid checkpoint")
    state["config"] = json.loads(state["config"])
    return state


def read_checkpoint_config(path: str | Path) -> dict:
    """The config stored in a checkpoint, without reading its tensors (memory-mapped)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return _export_sidecar(path)["config"]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # corrupt file, or one that needs pickled objects
        raise CheckpointError(f"{path}: not a loadable vireid checkpoint ({e})") from None
    if not isinstance(state, dict) or "config" not in state:
        raise CheckpointError(f"{path}: missing 'config'; not a vireid checkpoint")
    return json.loads(state["config"])


def restore_rng(state: dict) -> None:
    _set_rng_state(state["rng"])


def export_safetensors(state: dict, out: str | Path) -> Path:
    """Weights-only export (``.safetensors``) with a JSON sidecar holding the config."""
    from safetensors.torch import save_file

    out = Path(out)
    tensors = {k: v.contiguous() for k, v in state["model"].items()}
    atomic_write(out, lambda tmp: save_file(tensors, tmp))
    write_json(
        out.with_suffix(".json"),
        {
            "config": state["config"],
            "epoch": state["epoch"],
            "trial": state.get("trial"),
            "fingerprint": state.get("fingerprint"),
        },
    )
    return out


def _export_sidecar(path: Path) -> dict:
    side = path.with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: no {side.name} next to it; `vireid export` writes the config there "
            "(a bare state dict goes to model.pretrained instead)"
        ) from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{side}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{side}: missing 'config'; not a vireid export sidecar")
    return meta


def _load_export(path: Path) -> dict:
    """The inverse of ``export_safetensors``: weights from the file, the rest from its
    sidecar (no optimiser or RNG state: it evaluates and initialises, it does not resume)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = _export_sidecar(path)
    try:
        model = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    return {
        "model": model,
        "epoch": meta.get("epoch", 0),
        "config": meta["config"],
        "trial": meta.get("trial"),
        "fingerprint": meta.get("fingerprint"),
    }
