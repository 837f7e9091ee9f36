"""What a smoke run changes in a recipe, and nothing else.

Kept as shipped: backbone, resolution, sampler and batch shape, optimiser, learning rate
(the warm-up still reaches the peak), loss terms and their weights, pseudo-label stage,
evaluation protocol. Changed, and listed in the report:

* the epoch schedule is *compressed*: every epoch at which the recipe changes behaviour
  (epoch 0, the end of the warm-up, each of the method's stage starts in ``STAGE_KEYS``)
  becomes one epoch of ``steps`` iterations, in the same order, so every stage runs;
  learning-rate milestones move with them (those after the last stage are not reached);
* the training set is the first few identities (``data.subset_ids``), evaluation one trial;
* missing pretrained weights become a random init, marked as such (smoke only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import RunCfg

# Epoch-valued keys where a recipe changes behaviour: {section: {dotted key: base}},
# base 1 = a 1-based epoch number, 0 = 0-based (the first epoch that behaves differently).
# tests/test_smoke.py fails when a method config gains an *_epoch key missing here.
STAGE_KEYS: dict[str, dict[str, int]] = {
    "train": {"warmup_epochs": 0},
    "mmm": {
        "match_start_epoch": 1,
        "intra_start_epoch": 1,
        "inter_start_epoch": 1,
        "id_warmup_epochs": 0,  # stage B's CE-only warm-up: epochs 0..n-1
    },
    "maum": {"uni_start_epoch": 0},
    "ecul": {"cross_start_epoch": 1, "tsmem.switch_epoch": 0},
}


@dataclass
class SmokePlan:
    cfg: RunCfg  # the smoke config (resolved)
    epochs: int  # compressed epochs
    changed: dict[str, tuple] = field(default_factory=dict)  # key → (shipped, smoke)
    weights: str = ""  # how the model is initialised, in words
    random_init: bool = False  # pretrained weights were absent: smoke-only random init


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _set(obj, dotted: str, value) -> None:
    *head, last = dotted.split(".")
    for part in head:
        obj = getattr(obj, part)
    setattr(obj, last, value)


def stage_keys(cfg: RunCfg) -> dict[str, int]:
    """``{full dotted key: base}`` of the epoch-valued stage keys this recipe has."""
    out = {f"train.{k}": b for k, b in STAGE_KEYS["train"].items()}
    out.update({f"method.{k}": b for k, b in STAGE_KEYS.get(cfg.method.name, {}).items()})
    return out


def compress_schedule(cfg: RunCfg, steps: int) -> tuple[int, dict[str, tuple]]:
    """Rewrite ``cfg`` in place: one epoch of ``steps`` iterations per behaviour change.
    Returns (epochs, {key: (shipped, smoke)})."""
    t = cfg.train
    keys = stage_keys(cfg)
    starts = {k: _get(cfg, k) for k in keys}
    # 0-based first epoch of each stage; a stage starting after the run never runs
    zero = {k: v - keys[k] for k, v in starts.items() if v is not None}
    bounds = sorted({0, *(b for b in zero.values() if 0 <= b < t.epochs)})
    epochs = max(2, len(bounds))  # two at least: one checkpoint save + resume between them

    def squeeze(b: int) -> int:
        """Compressed 0-based epoch of shipped epoch ``b``: boundaries keep their order,
        a value between two lands on the next, one past the run stays past it."""
        if b >= t.epochs:
            return epochs
        return bounds.index(b) if b in bounds else sum(x < b for x in bounds)

    changed: dict[str, tuple] = {"train.epochs": (t.epochs, epochs)}
    for k, b in zero.items():
        new = (0 if b < 0 else squeeze(b)) + keys[k]
        if new != starts[k]:
            changed[k] = (starts[k], new)
            _set(cfg, k, new)
    milestones = [squeeze(m) for m in t.milestones]
    if milestones != t.milestones:
        changed["train.milestones"] = (list(t.milestones), milestones)
    t.milestones, t.epochs = milestones, epochs
    changed["train.iters_per_epoch"] = (t.iters_per_epoch, steps)
    t.iters_per_epoch = steps
    return epochs, changed


def weights_status(model_cfg) -> tuple[bool, str]:
    """(available, description) of ``model.pretrained`` without downloading or pretraining
    anything: ImageNet files exist and fit the width, the stand-in is already cached."""
    p, arch, width = model_cfg.pretrained, model_cfg.arch, model_cfg.width
    if p is None:
        return True, "random init (as the recipe says)"
    if str(p) == "synthetic":
        from ..pretrain import PretrainSpec
        from ..pretrain.cache import weights_path

        path = weights_path(PretrainSpec(arch=arch, width=width))
        return path.is_file(), f"synthetic stand-in {path}"
    if str(p) == "torchvision":
        from ..models.weights import TORCHVISION_FILES

        hub = Path(torch.hub.get_dir()) / "checkpoints"
        names = TORCHVISION_FILES[arch]
        found = [hub / n for n in ((names,) if isinstance(names, str) else names)]
        found = [f for f in found if f.is_file()]
        if width != 1:
            return False, f"ImageNet {arch} weights do not fit model.width={width:g}"
        if not found:
            return False, f"no ImageNet {arch} weights in {hub}"
        return True, f"ImageNet {found[0]}"
    path = Path(p).expanduser()
    return path.is_file(), f"{'' if path.is_file() else 'missing file '}{path}"


def plan_smoke(cfg: RunCfg, root: Path, run_dir: Path, cache_dir: Path, steps: int) -> SmokePlan:
    """The smoke version of ``cfg`` (a deep copy; ``cfg`` is not modified)."""
    cfg = cfg.model_copy(deep=True)
    epochs, changed = compress_schedule(cfg, steps)
    d, b = cfg.data, cfg.data.batch
    d.dataset.root = Path(root)
    d.cache_dir = Path(cache_dir)
    d.subset_ids = max(12, b.num_ids + 4, (b.num_ids_infrared or 0) + 4)
    changed["data.subset_ids"] = (None, d.subset_ids)
    cfg.output_dir = Path(run_dir)
    cfg.train.checkpoint_every = 1
    cfg.eval.trials = 1 if not isinstance(cfg.eval.trials, int) else min(cfg.eval.trials, 1)
    cfg.eval.report = False
    ok, words = weights_status(cfg.model)
    plan = SmokePlan(cfg, epochs, changed, words)
    if not ok:
        plan.random_init = True
        plan.weights = f"RANDOM INIT (smoke only): {words}"
        changed["model.pretrained"] = (cfg.model.pretrained, None)
        cfg.model.pretrained = None
    return plan
