"""The stand-in weights on disk: one file per ``PretrainSpec``, built once, then reused.

``model.pretrained: synthetic`` resolves here. The file lives under ``$VIREID_CACHE`` (or
``~/.cache/vireid``) in ``pretrain/``, named by the architecture and a digest of every
setting that determines the weights (including the generator version), so a change of
settings or of the renderer builds a new file and never reuses a stale one. Concurrent
processes (DDP ranks, parallel tests) wait on a file lock while one of them builds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from ..utils.io import atomic_write, write_json
from .train import PretrainSpec, pretrain_backbone

METADATA_KEY = "vireid_pretrain"


def cache_root() -> Path:
    return Path(os.environ.get("VIREID_CACHE") or Path.home() / ".cache" / "vireid")


def weights_path(spec: PretrainSpec, root: Path | None = None) -> Path:
    digest = hashlib.sha1(json.dumps(spec.key(), sort_keys=True).encode()).hexdigest()[:12]
    name = f"{spec.arch}-w{spec.width:g}-{spec.height}x{spec.image_width}-{digest}.safetensors"
    return (root or cache_root()) / "pretrain" / name


def save_weights(state: dict, summary: dict, path: Path) -> Path:
    """Atomically write the state dict (safetensors, summary in its metadata) and a JSON
    sidecar with the same summary."""
    from safetensors.torch import save_file

    meta = {METADATA_KEY: json.dumps(summary)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
    write_json(path.with_suffix(".json"), summary)
    return path


def ensure_weights(
    spec: PretrainSpec,
    force: bool = False,
    log: Callable[[str], None] = lambda s: None,
    root: Path | None = None,
) -> Path:
    """Path of the stand-in for ``spec``, pretraining it first when it is not cached."""
    path = weights_path(spec, root)
    if path.is_file() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same file
        if path.is_file() and not force:
            return path
        log(f"pretraining the synthetic stand-in for ImageNet weights into {path}")
        state, summary = pretrain_backbone(spec, log)
        return save_weights(state, summary, path)


def read_summary(path: Path) -> dict | None:
    """The pretraining summary of a stand-in weights file, or None for other files."""
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else None
