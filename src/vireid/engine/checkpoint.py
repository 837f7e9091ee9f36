"""Checkpoints: one file with everything needed to resume exactly, written atomically and
read with ``weights_only=True`` (no arbitrary code runs when loading)."""

from __future__ import annotations

import json
import random
import re
import warnings
import zipfile
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
    # clean_stale: a run killed mid-save (kill -9) leaves a full-size temporary file
    return atomic_write(path, lambda tmp: torch.save(state, tmp), clean_stale=True)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or belongs to another dataset/trial."""


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/last.pt`` for a run directory."""
    path = Path(path)
    if path.is_dir():
        if (path / CHECKPOINT_NAME).is_file():
            return path / CHECKPOINT_NAME
        raise CheckpointError(
            f"{path} is a directory without {CHECKPOINT_NAME}; expected a checkpoint file "
            f"or a run directory holding {CHECKPOINT_NAME}"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def _is_npz(path: Path) -> bool:
    """NumPy's archives hold top-level ``*.npy`` members; torch's a folder of records."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return bool(names) and all(n.endswith(".npy") and "/" not in n for n in names)


def refused_global(e: Exception) -> str | None:
    """The Python object a ``weights_only`` load refused to unpickle, if that is why."""
    found = re.search(r"GLOBAL ([\w.]+)|Unsupported global: ([\w.]+)", str(e))
    return (found.group(1) or found.group(2)) if found else None


def _load_failure(e: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in our words: torch's own
    message advises loading with ``weights_only=False``, which would run the file's code."""
    name = refused_global(e)
    if name:
        return (
            f"refers to the Python object {name}, which a checkpoint never holds; refused "
            "(loading it could run code). Expected a vireid checkpoint (last.pt)"
        )
    return "not a loadable vireid checkpoint (corrupt, truncated or not a torch file)"


def _check_state(state, path: Path) -> dict:
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: holds a {type(state).__name__}, not a vireid checkpoint "
            "(a dict with 'model', 'epoch' and 'config')"
        )
    for key in ("model", "epoch", "config"):
        if key not in state:
            raise CheckpointError(f"{path}: missing {key!r}; not a vireid checkpoint")
    model = state["model"]
    if not isinstance(model, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()
    ):
        raise CheckpointError(f"{path}: 'model' is not a state dict of named tensors")
    if isinstance(state["epoch"], bool) or not isinstance(state["epoch"], int):
        raise CheckpointError(f"{path}: 'epoch' is {state['epoch']!r}; expected an integer")
    state["config"] = _stored_config(state, path)
    bad = [k for k, v in model.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(
            f"{path}: weights hold NaN/Inf in {bad[0]!r} ({len(bad)} tensor(s)); the run "
            "diverged or the file is damaged"
        )
    return state


def check_shapes(path: Path, stored: dict, own: dict, what: str = "the configured model") -> None:
    """``stored`` weights must have ``own``'s shapes (``load_state_dict`` would print one
    line per tensor in a traceback)."""
    wrong = [k for k, v in stored.items() if k in own and own[k].shape != v.shape]
    if wrong:
        k = wrong[0]
        raise CheckpointError(
            f"{path}: the weights do not fit {what}: {k} is {tuple(stored[k].shape)} in "
            f"the file but {tuple(own[k].shape)} in the model ({len(wrong)} tensor(s) differ)"
        )


def _stored_config(state, path: Path) -> dict:
    if not isinstance(state, dict) or "config" not in state:
        raise CheckpointError(f"{path}: missing 'config'; not a vireid checkpoint")
    try:
        config = json.loads(state["config"]) if isinstance(state["config"], str) else None
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"{path}: the stored config is not valid JSON ({e.msg} at char {e.pos}); "
            "the file is damaged or was not written by vireid"
        ) from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the stored config is not a JSON object")
    return config


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint (a file, or a run directory's ``last.pt``) with
    ``weights_only=True``, or a ``.safetensors`` export with its JSON sidecar; every
    problem is one ``CheckpointError`` naming the file."""
    path = checkpoint_path(path)
    if path.suffix == ".safetensors":
        return _load_export(path)
    return _check_state(_torch_load(path), path)


def read_checkpoint_config(path: str | Path) -> dict:
    """The config stored in a checkpoint, without reading its tensors (memory-mapped)."""
    path = checkpoint_path(path)
    if path.suffix == ".safetensors":
        return _export_sidecar(path)["config"]
    return _stored_config(_torch_load(path, mmap=True), path)


def _torch_load(path: Path, mmap: bool = False):
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes); expected a vireid checkpoint")
    if _is_npz(path):
        raise CheckpointError(
            f"{path} is a NumPy .npz archive (a features file?), not a checkpoint; "
            f"`vireid eval` reads features with --features {path}"
        )
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 107" on garbage
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # corrupt file, or one that needs pickled objects
        raise CheckpointError(f"{path}: {_load_failure(e)}") from None


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
