"""A community checkpoint as a vireid checkpoint (``vireid import``).

The weights come from ``models.community``; this module decides the config that goes
with them (layer 2) and writes a checkpoint that ``vireid eval``, ``vireid export``,
``FeatureExtractor`` and ``train.init_from`` read like any ``last.pt``. The config says
what a state dict cannot: the dataset the model was trained on (its protocols), the test
image size, the pooling (AGW's ``gm_pool`` flag is not a weight) and whether the source's
test script flip-averages (CAJ's ``testa.py`` does; AGW's ``test.py``, DDAG's and MMM's
``test.py`` do not).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..config import RunCfg, validate_config
from ..models import build_model
from ..models.community import map_embed_net, read_community_checkpoint
from ..utils.io import atomic_write
from .checkpoint import CheckpointError

# format → (its test-time flip, its default test size HxW)
FORMATS = {
    "agw": (False, (288, 144)),  # Cross-Modal-Re-ID-baseline test.py
    "caj": (True, (288, 144)),  # ICCV21_CAJ testa.py ("testing augmentation")
    "ddag": (False, (288, 144)),  # DDAG test_ddag.py
    "mmm": (False, (288, 144)),  # MMM test.py
}
DATASETS = {"sysu_mm01": "sysu/all/single", "regdb": "regdb/v2t", "llcm": "llcm/i2v"}


def imported_config(
    spec: dict,
    fmt: str,
    dataset: str,
    *,
    root: Path | None = None,
    trial: int | None = None,
    size: tuple[int, int] | None = None,
    pooling: str | None = None,
    flip: bool | None = None,
    output_dir: Path = Path("."),
) -> RunCfg:
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {sorted(FORMATS)}")
    if dataset not in DATASETS:
        raise ValueError(f"--dataset {dataset!r}: expected one of {sorted(DATASETS)}")
    if trial is not None and dataset != "regdb":
        raise ValueError("--trial is RegDB's train/test split: give it only with --dataset regdb")
    default_flip, default_size = FORMATS[fmt]
    h, w = size or default_size
    ds: dict = {"name": dataset, "root": None if root is None else str(root)}
    if dataset == "regdb":
        ds["trial"] = trial or 1
    return validate_config(
        {
            "output_dir": str(output_dir),
            "data": {"dataset": ds, "height": h, "width": w},
            "model": {
                "name": "two_stream",
                "arch": spec["arch"],
                "width": spec["width"],
                "non_local": spec["non_local"],
                # embed_net's gm_pool is switched with its non-local blocks (AGW's 'agw' vs
                # 'base'); DDAG average-pools
                "pooling": pooling or ("gem" if spec["non_local"] else "avg"),
                "last_stride": 1,
            },
            "eval": {
                "protocol": DATASETS[dataset],
                "flip": default_flip if flip is None else flip,
            },
        }
    )


def import_checkpoint(
    src: Path, out: Path, fmt: str = "agw", dataset: str = "sysu_mm01", drop_heads=False, **kw
) -> tuple[Path, RunCfg, dict]:
    """Read ``src``, map it, check it loads into the configured network, write ``out``.
    Returns (out, config, summary)."""
    sd, meta = read_community_checkpoint(src)
    mapped, spec = map_embed_net(sd, drop_heads, str(src))
    cfg = imported_config(spec, fmt, dataset, output_dir=out.parent, **kw)
    model = build_model(cfg.model, spec["num_classes"])
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(
            f"{src}: mapped weights do not fill the network (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    epoch = meta.get("epoch")
    summary = {
        "source": str(src),
        "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "format": fmt,
        "source_epoch": int(epoch) if isinstance(epoch, (int, float)) else None,
        "tensors": len(mapped),
        "dropped": len(sd) - len(mapped),
        **spec,
    }
    state = {
        "model": {f"model.{k}": v for k, v in model.state_dict().items()},
        "epoch": summary["source_epoch"] or 0,
        "step": 0,
        "config": json.dumps(cfg.model_dump(mode="json"), default=str),
        "fingerprint": None,
        "trial": getattr(cfg.data.dataset, "trial", None),
        "extra": {"imported": json.dumps(summary)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: torch.save(state, tmp))
    return out, cfg, summary
