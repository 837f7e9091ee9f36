"""Every ablation switch is live: each row of ``benchmarks/effects/*.yaml`` changes the
first training steps of its recipe, against the group's full row (the row without
overrides) and against the row it is compared with. A switch that changes nothing is a bug:
its effects row would measure the full method twice. Rows added to the files are picked up.

The steps, built the cheapest honest way:

* the group's quickstart recipe (``config``) with a tiny random-init network (width
  0.125) and small batches (2 identities × 2 instances), on the tests' tiny synthetic
  SYSU-MM01 copy, then the row's overrides (so a row may override these too);
* supervised methods: the real training loader (sampler, transforms);
* unsupervised methods: the real pseudo-label hook (per-modality clustering, the method's
  ``on_clusters`` with its memories, matching and sampling labels, the loader), fed
  stand-in clustering features (each person a direction, look-alike pairs of persons, a
  modality gap, camera shifts, noise) instead of the random-init network's, which DBSCAN
  would leave all outliers; the network that trains is the real one;
* the trainer's own ``train_step`` (forward, backward, optimiser step, the method's memory
  updates) for two steps, recording the loss and every gradient; the same seed for every
  row, so two configs that do not differ give bit-identical numbers.

When a switch acts: through state written after a step (a memory bank, a memory update
rule) it shows at the second step; from a start epoch on (MMM's matching and Inter term,
MAUM's second phase, ECUL's TSMem stage 2) the steps are also taken at the recipe's last
epoch (the hook, ``method.set_epoch`` and the loader at that epoch), where every start
epoch has passed; through the pseudo-labels (ECUL's k3 filter) only where some distance
sits near DBSCAN's eps, so up to three draws of the stand-in features are tried. A row is
live when a loss or a gradient differs in any of these; it fails only if none does.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from conftest import run_overrides
from vireid.config import load_config
from vireid.data.loader import MODALITY_INDEX
from vireid.data.usl import LoaderOpts
from vireid.engine.builders import build_optimizer, build_streams, build_train_data
from vireid.engine.distributed import DistInfo
from vireid.engine.pseudo_labels import PseudoLabelHook
from vireid.engine.run import training_splits
from vireid.engine.trainer import Trainer
from vireid.methods import build_method
from vireid.models import build_model
from vireid.utils.seed import seed_everything

ROOT = Path(__file__).parents[1]
GROUPS = ROOT / "benchmarks" / "effects"
TINY = [
    "model.width=0.125",
    "model.pretrained=null",
    "data.batch.num_ids=2",
    "data.batch.num_ids_infrared=2",
    "data.batch.num_instances=2",
    "data.cache=false",
    "data.workers=0",
]
# two steps: a mechanism that acts through state written after a step (a memory bank, a
# memory update rule, accumulated prototypes) shows at the second
STEPS = 2
# draws of the stand-in clustering features: a clustering switch (ECUL's k3 filter) acts on
# the pseudo-labels only where a distance sits near DBSCAN's eps, which depends on the draw
DRAWS = (0, 1, 2)
REL_TOL = 1e-5  # a dead switch gives bit-identical numbers; a live one differs far more


def _groups() -> list[dict]:
    out = []
    for path in sorted(GROUPS.glob("*.yaml")):
        g = yaml.safe_load(path.read_text())
        g["group"] = path.stem
        full = [r for r in g["rows"] if not r.get("overrides")]
        if len(full) != 1:
            raise ValueError(
                f"{path}: expected exactly one row without overrides (the full method), "
                f"found {[r['name'] for r in full]}"
            )
        g["full"] = full[0]
        out.append(g)
    return out


def _pairs() -> list:
    """(group, row, reference) for every row against the full row, and against its
    ``compare_to`` row when that is another one."""
    params = []
    for g in _groups():
        rows = {r["name"]: r for r in g["rows"]}
        seen = set()
        for r in g["rows"]:
            refs = [g["full"]["name"]]
            if r.get("compare_to") in rows:
                refs.append(r["compare_to"])
            for ref in refs:
                key = frozenset((r["name"], ref))
                if ref == r["name"] or key in seen:
                    continue
                seen.add(key)
                pid = f"{g['group']}:{r['name']}"
                if ref != g["full"]["name"]:
                    pid += f" vs {ref}"
                params.append(pytest.param(g, rows[r["name"]], rows[ref], id=pid))
    return params


def stand_in_features(
    dim: int, seed: int = 0, noise: float = 0.5, cam: float = 0.2, twin: float = 0.5
):
    """``featurize(samples, images)`` for the pseudo-label hook: unit features made of a
    per-person direction (persons 2k and 2k + 1 share ``twin`` of it: look-alikes), a
    per-modality offset (the modality gap), a per-camera shift and noise; deterministic in
    the samples."""
    rng = np.random.default_rng(seed)
    own = rng.normal(size=(1000, dim))
    people = twin * np.repeat(rng.normal(size=(500, dim)), 2, axis=0) + (1 - twin) * own
    gap = 0.5 * rng.normal(size=(2, dim))
    cams = cam * rng.normal(size=(16, dim))

    def featurize(samples, images=None, corrupt=None):
        x = np.stack(
            [
                people[s.pid % 1000] + gap[MODALITY_INDEX[s.modality]] + cams[s.camid]
                for s in samples
            ]
        )
        rng_noise = np.random.default_rng([seed, len(samples)]).normal(size=x.shape)
        x = x + noise * rng_noise
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return featurize


_CACHE: dict = {}


def first_steps(group: dict, row: dict, epoch: int | None, draw: int, root: Path, tmp: Path):
    """[(loss, {parameter: gradient})] of the first STEPS training steps of ``epoch``
    (None: the last) of ``row``'s config, clustering on the stand-in features of ``draw``
    (unsupervised methods); cached per row, epoch and draw for the session."""
    key = (group["group"], row["name"], epoch, draw)
    if key in _CACHE:
        return _CACHE[key]
    over = [*TINY, *row.get("overrides", []), *run_overrides(root, tmp / "run", tmp / "c")]
    cfg = load_config(ROOT / group["config"], over)
    if epoch is None:
        epoch = cfg.train.epochs - 1
    seed_everything(cfg.train.seed)
    splits = training_splits(cfg)
    if cfg.method.unsupervised:
        model = build_model(cfg.model, 0)
        method = build_method(cfg.method, model)
        b = cfg.data.batch
        hook = PseudoLabelHook(
            method,
            build_streams(cfg, splits),
            stand_in_features(model.feat_dim, seed=draw),
            cfg.method.cluster,
            b,
            LoaderOpts(STEPS, cfg.train.seed),
            DistInfo(),
        )
        trainer = SimpleNamespace(epoch=epoch, epoch_extras={}, skip_epoch=False, loader=None)
        hook.before_epoch(trainer)
        assert not trainer.skip_epoch, f"{row['name']}: the stand-in features gave no cluster"
        loader = trainer.loader
    else:
        data = build_train_data(cfg, DistInfo(), splits)
        model = build_model(cfg.model, data.num_classes)
        method = build_method(cfg.method, model)
        loader = data.loader
    method.num_epochs = cfg.train.epochs
    trainer = Trainer(
        method,
        build_optimizer(cfg, method),
        loader,
        epochs=cfg.train.epochs,
        device=torch.device("cpu"),
        hooks=[],
        iters_per_epoch=STEPS,
    )
    trainer.epoch = epoch
    method.train()
    method.set_epoch(epoch)
    torch.manual_seed(cfg.train.seed)  # the transforms draw from torch's global RNG
    steps = []
    for batch in trainer._batches():  # reseeds the loader for this epoch
        out = trainer.train_step(batch)  # forward, backward, optimiser, memory updates
        grads = {
            n: p.grad.detach().clone() for n, p in method.named_parameters() if p.grad is not None
        }
        steps.append((float(out["loss"]), grads))
    _CACHE[key] = steps
    return steps


def differ(a: list, b: list) -> bool:
    """Whether two runs of steps differ in a loss or a gradient."""
    return len(a) != len(b) or any(_step_differs(x, y) for x, y in zip(a, b, strict=True))


def _step_differs(a, b) -> bool:
    (la, ga), (lb, gb) = a, b
    if abs(la - lb) > REL_TOL * max(1.0, abs(la)):
        return True
    if ga.keys() != gb.keys() or any(ga[k].shape != gb[k].shape for k in ga):
        return True
    da = torch.cat([ga[k].flatten() - gb[k].flatten() for k in ga]) if ga else torch.zeros(1)
    norm = torch.cat([g.flatten() for g in ga.values()]).norm() if ga else torch.zeros(())
    return bool(da.norm() > REL_TOL * max(float(norm), 1e-12))


@pytest.mark.parametrize("group,row,ref", _pairs())
def test_switch_is_live(group, row, ref, sysu_root, tmp_path):
    unsupervised = load_config(ROOT / group["config"]).method.unsupervised
    for epoch in (0, None):  # the first epoch, then the last (every start epoch passed)
        for draw in DRAWS if unsupervised else DRAWS[:1]:
            runs = [first_steps(group, r, epoch, draw, sysu_root, tmp_path) for r in (row, ref)]
            if differ(*runs):
                return
    pytest.fail(
        f"effects/{group['group']}.yaml: row {row['name']!r} "
        f"({row.get('overrides', [])}) trains exactly like {ref['name']!r} "
        f"({ref.get('overrides', [])}) in the first {STEPS} steps of the first and of the "
        f"last epoch"
    )
