"""Every recipe file in configs/ smoke-runs (``vireid train RECIPE --smoke``) on a synthetic
tree in its dataset's official layout at the recipe's own resolution: every stage of its
schedule, the pseudo-label and matching steps, a checkpoint save + resume, an evaluation.

A recipe dropped into configs/ is collected here without editing this file. The default
run smoke-runs each one in a reduced form (``REDUCED``: a narrow ResNet-18, two instances
per identity, no loader processes, no non-local blocks; everything else as shipped);
``-m slow`` runs them as shipped (ResNet-50 and the shipped batch: meant for a GPU
machine, hours on a CPU).
Chains (``train.init_from: recipe:…``) run end to end: the producer's smoke first, then
this recipe from its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vireid.config.chains import is_recipe_ref
from vireid.data.synthetic.tiny_tree import write_tiny_tree
from vireid.engine.smoke import load_unchecked, run_smoke
from vireid.engine.smoke_plan import weights_status

CONFIGS = Path(__file__).parents[1] / "configs"
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if "_base_" not in p.parts)
# the CPU budget of the default run: a narrow backbone and K = 2 (the sampler's shape,
# P identities x K per modality, is kept); resolution, optimiser, lr, loss terms,
# pseudo-label stage and protocol are as shipped. Loading in the main process: forked
# loader workers inside a pytest-xdist worker that has run DDP tests hung once (600 s).
# No non-local blocks: from a random init, one or two SGD steps leave their output BN's
# running variance near its init while theta.phi.g grows as the cube of the activations,
# so eval-mode features overflow float32 (1e24 after the second block on CAJ/MAUM); the
# blocks have their own tests (tests/test_models.py) and run in the as-shipped smoke.
REDUCED = [
    "model.arch=resnet18",
    "model.width=0.125",
    "model.non_local=false",
    "data.batch.num_instances=2",
    "data.workers=0",
]
MATCHING = {"mmm", "ecul"}  # methods whose cross-modality association runs every recipe


def _id(p: Path) -> str:
    return str(p.relative_to(CONFIGS).with_suffix(""))


# Shipped recipes whose chain key (train.init_from, method.labels_from) is a plain path to
# a checkpoint no run produces: an undeclared chain, which the smoke reports as not
# exercised. Strict: a recipe listed here that starts passing must leave the list.
UNDECLARED_CHAINS: set[str] = set()


def _params():
    for p in RECIPES:
        marks = []
        if _id(p) in UNDECLARED_CHAINS:
            marks = [pytest.mark.xfail(strict=True, reason="undeclared chain (plain init_from)")]
        yield pytest.param(p, id=_id(p), marks=marks)


@pytest.fixture(scope="session")
def tree(tmp_path_factory):
    # shared by the xdist workers (file lock in write_tiny_tree)
    base = tmp_path_factory.getbasetemp().parent / "smoke_trees"

    def get(recipe: Path) -> Path:
        d = load_unchecked(recipe, []).data
        return write_tiny_tree(d.dataset.name, d.height, d.width, base, "tiny")

    return get


def _matches(cfg) -> bool:
    m = cfg.method
    if not getattr(m, "mmlm", True):  # MMM's official stage A2: a joint memory, no matching
        return False
    return m.name in MATCHING or getattr(m, "cross", "none") != "none"


def check_report(recipe: Path, report) -> None:
    """What a passing smoke run means, stage by stage."""
    assert report.ok, "\n".join(report.failures)
    *producers, stage = report.stages
    cfg = load_unchecked(recipe, [])
    if is_recipe_ref(cfg.train.init_from):  # the chain ran end to end
        assert producers, "the producer recipe did not run"
        assert stage.init_from == str(producers[-1].run_dir / "last.pt")
    for s in report.stages:
        assert len(s.rows) == s.plan.epochs >= 2 and 0 < s.resumed_at < s.plan.epochs
        steps = [r["step"] for r in s.rows]
        assert steps == list(range(1, len(steps) + 1))  # every epoch ran its step
        assert all(r["terms_computed"] for r in s.rows)
        assert s.protocol == s.plan.cfg.eval.protocol and "mAP" in s.metrics
        assert (Path(s.run_dir) / "last.pt").is_file()
        if s.plan.cfg.method.unsupervised:  # a pseudo-label step before every epoch
            assert all("pseudo_label_seconds" in r for r in s.rows)
            if _matches(s.plan.cfg):
                # (offline labels, MMM's stage B: matched once, logged with the first epoch)
                assert any(k.startswith(("cross_ARI", "cross_pairs")) for r in s.rows for k in r)
    assert stage.projection.get("seconds_per_step", 0) > 0


@pytest.mark.parametrize("recipe", list(_params()))
def test_recipe_smoke_reduced(recipe, tree, tmp_path):
    report = run_smoke(recipe, REDUCED, root=tree(recipe), out=tmp_path, steps=1)
    check_report(recipe, report)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(_params()))
def test_recipe_smoke_as_shipped(recipe, tree, tmp_path):
    """As shipped includes the pretrained weights: without them a smoke run is a random
    init, which is not the recipe (random-init ResNet-50 features put AGW's soft-margin
    triplet at log(1 + e^150) = inf on the first step, as in the community code)."""
    ok, words = weights_status(load_unchecked(recipe, []).model)
    if not ok:
        pytest.skip(f"pretrained weights not on this machine: {words}")
    report = run_smoke(recipe, ["data.workers=0"], root=tree(recipe), out=tmp_path, steps=1)
    check_report(recipe, report)
