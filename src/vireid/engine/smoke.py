"""``vireid train RECIPE --smoke``: the recipe as shipped on a few identities for a few steps
per stage, then a one-screen report (in the spirit of Lightning's ``fast_dev_run``).

Each stage of the (compressed, ``smoke_plan``) schedule runs: the pseudo-label step, the
matching step where the method has one, every loss term the recipe enables. The run stops
one epoch before its end, saves its checkpoint, and a second process-level ``train`` call
resumes from it and evaluates. A recipe chain (``train.init_from: recipe:…``) smoke-runs
its producer first and starts from that smoke checkpoint (the ``model.*`` overrides, e.g. a
reduced backbone, apply to every stage so the chain stays compatible).

The report: stages run, loss terms active, peak memory, seconds per step, and the
projected time of the full recipe on this device (training steps and pseudo-label steps;
evaluation is measured, not projected).
"""

from __future__ import annotations

import resource
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import RunCfg, apply_overrides, validate_config
from ..config.chains import RECIPE_PREFIX, ChainError, chain_refs, check_chain, is_recipe_ref
from ..config.loader import load_yaml_tree
from ..data.datasets import build_dataset
from ..data.datasets.errors import DatasetError
from ..data.records import Modality
from ..data.subset import first_identities
from ..utils.device import pick_device
from ..utils.logging import get_logger
from .smoke_plan import SmokePlan, plan_smoke

log = get_logger(__name__)


@dataclass
class StageResult:
    """One recipe of a smoke run (a chain has several, producers first)."""

    recipe: Path
    plan: SmokePlan
    root: Path
    rows: list[dict]  # metrics rows of every epoch, both parts
    resumed_at: int  # epochs done when the run stopped and resumed
    protocol: str
    metrics: dict[str, float]  # final evaluation (means, percent)
    eval_seconds: float
    init_from: str | None  # the checkpoint the weights started from
    recipe_root: Path | None = None  # the recipe's own data.dataset.root
    projection: dict[str, float | str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return Path(self.plan.cfg.output_dir)

    def terms(self) -> list[str]:
        """Loss terms computed in some epoch (active or exactly 0)."""
        return sorted({t for r in self.rows for t in r.get("terms_computed", [])})


@dataclass
class SmokeReport:
    stages: list[StageResult]
    device: str
    peak_memory: int  # bytes
    memory_kind: str  # "CUDA allocated" or "process RSS"

    @property
    def failures(self) -> list[str]:
        return [f"{s.recipe.name}: {f}" for s in self.stages for f in s.failures]

    @property
    def ok(self) -> bool:
        return not self.failures


def load_unchecked(recipe: str | Path, overrides: list[str]) -> RunCfg:
    """A recipe with overrides, its chain not yet checked (the smoke replaces it)."""
    return validate_config(apply_overrides(load_yaml_tree(recipe), overrides))  # type: ignore[return-value]


def smoke_root(cfg: RunCfg, root: Path | None, synthetic: bool) -> Path:
    """--root, else a synthetic tree in the dataset's layout at the recipe's resolution
    (--synthetic), else the recipe's root (or $VIREID_DATA)."""
    if root is not None:
        return Path(root)
    if synthetic:
        from ..data.synthetic.tiny_tree import write_tiny_tree
        from ..pretrain.cache import cache_root

        d = cfg.data
        return write_tiny_tree(d.dataset.name, d.height, d.width, cache_root() / "smoke_data")
    from ..data.datasets.base import resolve_root

    try:
        return resolve_root(cfg.data.dataset.root, cfg.data.dataset.name)
    except DatasetError as e:
        raise DatasetError(f"{e}; or --synthetic for a generated tree in its layout") from None


def run_smoke(
    recipe: str | Path,
    overrides: list[str] | None = None,
    *,
    root: Path | None = None,
    synthetic: bool = False,
    out: Path | None = None,
    steps: int = 2,
) -> SmokeReport:
    overrides = list(overrides or [])
    cfg = load_unchecked(recipe, overrides)
    out = Path(out or f"{cfg.output_dir}-smoke")
    device = pick_device(cfg.train.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    stages: list[StageResult] = []
    _stage(Path(recipe).resolve(), cfg, overrides, root, synthetic, out, steps, stages, ())
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device), "CUDA allocated"
    else:  # ru_maxrss: KiB on Linux
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process RSS"
    return SmokeReport(stages, str(device), peak, kind)


def _stage(recipe, cfg, overrides, root, synthetic, out, steps, stages, seen) -> StageResult:
    notes, init = [], None
    cfg = cfg.model_copy(deep=True)
    for sec, name, key, ref in list(chain_refs(cfg)):
        if is_recipe_ref(ref):
            producer = Path(ref[len(RECIPE_PREFIX) :]).resolve()
            if producer in seen or producer == recipe:
                raise ChainError(f"{key}: circular recipe chain through {producer}")
            model_over = [o for o in overrides if o.startswith("model.")]
            pcfg = load_unchecked(producer, model_over)
            p = _stage(
                producer, pcfg, model_over, root, synthetic, out, steps, stages, (*seen, recipe)
            )
            setattr(sec, name, str(p.run_dir / "last.pt"))
        elif not Path(ref).expanduser().is_file():
            notes.append(f"{key}={ref} does not exist: NOT exercised (declare it as recipe:…)")
            setattr(sec, name, None)
    init = cfg.train.init_from
    check_chain(cfg)  # the smoke checkpoint's stored model against this recipe's
    data_root = smoke_root(cfg, root, synthetic)
    plan = plan_smoke(cfg, data_root, out / recipe.stem, out / ".cache", steps)
    result = _run(recipe, plan, data_root, init, cfg.data.dataset.root)
    result.failures.extend(notes)
    stages.append(result)
    return result


def _run(recipe: Path, plan: SmokePlan, root: Path, init: str | None, recipe_root) -> StageResult:
    from .run import train

    shutil.rmtree(plan.cfg.output_dir, ignore_errors=True)  # a smoke run starts fresh
    first = plan.cfg.model_copy(deep=True)
    first.train.epochs = plan.epochs - 1  # stop one epoch early: checkpoint, then resume
    log.info("smoke %s: %d epochs, resume after %d", recipe.name, plan.epochs, plan.epochs - 1)
    try:
        part1 = train(first, evaluate=False)
        part2 = train(plan.cfg, resume="auto")
    except FloatingPointError as e:  # the recipe diverges: the finding a smoke run is for
        failed = StageResult(recipe, plan, root, [], 0, plan.cfg.eval.protocol, {}, 0.0, init)
        hint = " (from a RANDOM INIT: the recipe's pretrained weights are absent)"
        failed.failures.append(str(e) + (hint if plan.random_init else ""))
        return failed
    ev = part2["eval"]
    result = StageResult(
        recipe,
        plan,
        root,
        part1["history"] + part2["history"],
        plan.epochs - 1,
        ev["protocol"],
        ev["mean"],
        part2["eval_seconds"],
        init,
        recipe_root,
    )
    prev = 0
    for k, row in enumerate(result.rows):
        if row["step"] == prev:  # the pseudo-label hook skips an epoch without clusters
            result.failures.append(f"epoch {k + 1} ran no training step (no clusters?)")
        prev = row["step"]
    result.projection = project(result)
    return result


def _train_images(cfg: RunCfg, subset: bool) -> tuple[int, dict]:
    splits = build_dataset(cfg.data.dataset)
    train = splits.train
    if subset and cfg.data.subset_ids:
        train = first_identities(train, cfg.data.subset_ids)
    vis = sum(s.modality is Modality.VISIBLE for s in train)
    return len(train), {"visible": vis, "infrared": len(train) - vis, "expected": splits.expected}


def _full_counts(plan: SmokePlan, root: Path, recipe_root: Path | None):
    """((visible, infrared) training images of the full dataset, where from): the smoke's
    root unless it is a generated tree, else the recipe's own root when it exists, else
    the dataset's published counts."""
    from ..data.synthetic.tiny_tree import DONE

    cfg = plan.cfg.model_copy(deep=True)
    cfg.data.subset_ids = None
    if (root / DONE).is_file() and recipe_root is not None and Path(recipe_root).is_dir():
        cfg.data.dataset.root = Path(recipe_root)
        root = Path(recipe_root)
    _, c = _train_images(cfg, subset=False)
    if not (root / DONE).is_file():
        return (c["visible"], c["infrared"]), str(root)
    e = c["expected"]
    if "train_visible" not in e or "train_infrared" not in e:
        return None, ""
    return (e["train_visible"], e["train_infrared"]), f"published {cfg.data.dataset.name} counts"


def project(r: StageResult) -> dict[str, float | str]:
    """Projected time of the full recipe on this device: shipped epochs × iterations ×
    measured seconds per step, plus (unsupervised) one pseudo-label step per epoch scaled
    linearly by the training-set size (clustering grows faster than linearly: a floor)."""
    ch, cfg = r.plan.changed, r.plan.cfg
    epochs, iters = ch["train.epochs"][0], ch["train.iters_per_epoch"][0]
    timed = [
        row["seconds"] / max(row["step"] - prev, 1)
        for prev, row in zip([0] + [x["step"] for x in r.rows], r.rows, strict=False)
        if row["step"] > prev
    ]
    if not timed:
        return {"note": "no training step ran"}
    s_step = statistics.median(timed[1:] or timed)  # the first steps carry warm-up costs
    full, source = _full_counts(r.plan, r.root, r.recipe_root)
    out: dict[str, float | str] = {"seconds_per_step": s_step, "size_from": source}
    if full is None:
        out["note"] = "full training-set size unknown (no published counts): pass --root"
        return out
    b = cfg.data.batch
    if iters is None:  # one pass, as the samplers count it
        if cfg.method.unsupervised:
            iters = max(1, full[1] // ((b.num_ids_infrared or b.num_ids) * b.num_instances))
        else:
            iters = max(1, max(full) // (b.num_ids * b.num_instances))
    out.update(epochs=epochs, iters_per_epoch=iters, train_seconds=epochs * iters * s_step)
    pl = [row["pseudo_label_seconds"] for row in r.rows if "pseudo_label_seconds" in row]
    if pl:
        n_smoke, _ = _train_images(cfg, subset=True)
        scale = sum(full) / max(n_smoke, 1)
        out["pseudo_label_seconds"] = epochs * statistics.median(pl) * scale
    out["total_seconds"] = out["train_seconds"] + out.get("pseudo_label_seconds", 0.0)
    return out
