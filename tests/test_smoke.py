"""``vireid train RECIPE --smoke``: the compressed schedule keeps every stage, missing weights
become a marked random init, and a smoke run reports what it exercised and what failed."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from vireid.cli import app
from vireid.config import load_config
from vireid.config.schema import MethodCfg, TrainCfg
from vireid.engine.smoke import run_smoke
from vireid.engine.smoke_plan import compress_schedule, plan_smoke, stage_keys

CONFIGS = Path(__file__).parents[1] / "configs"
NOT_STAGES = {"train.epochs", "train.iters_per_epoch"}


def _epoch_fields(model: type[BaseModel], prefix: str) -> set[str]:
    out = set()
    for name, f in model.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            out |= _epoch_fields(f.annotation, f"{prefix}{name}.")
        elif name.endswith(("_epoch", "_epochs")):
            out.add(prefix + name)
    return out


@pytest.mark.parametrize(
    "member", typing.get_args(typing.get_args(MethodCfg)[0]), ids=lambda m: m.__name__
)
def test_every_epoch_valued_key_is_a_known_stage(member):
    """A method config that gains a stage key (…_epoch) must declare it to the smoke
    schedule, or a smoke run would silently never reach that stage."""
    cfg = load_config(None, [f"method.name={member.model_fields['name'].default}"])
    known = set(stage_keys(cfg))
    found = _epoch_fields(member, "method.") | _epoch_fields(TrainCfg, "train.")
    assert found - NOT_STAGES <= known


def test_compressed_schedule_keeps_every_stage_in_order():
    cfg = load_config(CONFIGS / "unsupervised" / "mmm_sysu.yaml")
    epochs, changed = compress_schedule(cfg, steps=2)
    m, t = cfg.method, cfg.train
    # shipped: intra from 1, lr warm-up to 10, matching from epoch 10, inter from 15 (1-based)
    assert epochs == 4 and t.iters_per_epoch == 2
    assert (m.intra_start_epoch, t.warmup_epochs, m.match_start_epoch) == (1, 2, 2)
    assert m.inter_start_epoch == 4  # the last smoke epoch (1-based)
    assert t.milestones == [4, 4]  # after the last stage: not reached, as the report says
    assert changed["method.match_start_epoch"] == (10, 2)


def test_a_stage_after_the_run_stays_after_it():
    cfg = load_config(CONFIGS / "unsupervised" / "ecul_sysu.yaml", ["method.cross_start_epoch=51"])
    epochs, _ = compress_schedule(cfg, steps=1)
    assert cfg.method.cross_start_epoch > epochs  # PCAL's never-starting stage stays off


def test_missing_weights_become_a_marked_random_init(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    cfg = load_config(CONFIGS / "supervised" / "agw_sysu.yaml")
    plan = plan_smoke(cfg, tmp_path, tmp_path / "run", tmp_path / "c", 1)
    assert plan.random_init and plan.cfg.model.pretrained is None
    assert plan.weights.startswith("RANDOM INIT (smoke only): no ImageNet resnet50 weights")
    assert cfg.model.pretrained is not None  # the recipe object itself is untouched
    weights = tmp_path / "imagenet.pth"
    weights.write_bytes(b"")
    cfg.model.pretrained = weights
    assert not plan_smoke(cfg, tmp_path, tmp_path / "r", tmp_path / "c", 1).random_init


def _smoke_cli(*args):
    return CliRunner().invoke(app, ["train", *map(str, args), "--smoke"])


def test_cli_smoke_report(sysu_root, tmp_path):
    r = _smoke_cli(
        CONFIGS / "tests" / "instant_mmm.yaml",
        f"output_dir={tmp_path / 'run'}",
        "--root",
        sysu_root,
    )
    assert r.exit_code == 0, r.output
    for text in ("instant_mmm.yaml (2 smoke epochs)", "(resumed)", "checkpoint saved after",
                 "projected full recipe", "peak memory", "smoke: OK"):  # fmt: skip
        assert text in r.output, text
    assert (tmp_path / "run-smoke" / "instant_mmm" / "last.pt").is_file()


def test_smoke_needs_a_root(monkeypatch):
    monkeypatch.delenv("VIREID_DATA", raising=False)
    r = _smoke_cli(CONFIGS / "supervised" / "agw_sysu.yaml")
    assert r.exit_code == 2 and "--synthetic" in r.output


def test_a_skipped_epoch_fails_the_smoke(sysu_root, tmp_path):
    """No cluster found (every sample an outlier): the epoch trains nothing, and the
    smoke says so instead of reporting success."""
    over = ["method.cluster.min_samples=100000"]
    report = run_smoke(CONFIGS / "tests" / "instant_usl.yaml", over, root=sysu_root, out=tmp_path)
    assert not report.ok
    assert "epoch 1 ran no training step" in report.failures[0]


def test_a_diverging_recipe_fails_the_smoke(sysu_root, tmp_path):
    over = ["train.lr=1e30", "train.warmup_epochs=0"]
    report = run_smoke(CONFIGS / "tests" / "instant.yaml", over, root=sysu_root, out=tmp_path)
    assert not report.ok and "non-finite loss" in report.failures[0]


def test_subset_keeps_the_first_identities_with_both_modalities(sysu_root):
    from vireid.data.datasets.sysu_mm01 import load_sysu_mm01
    from vireid.data.records import Modality
    from vireid.data.subset import first_identities

    train = load_sysu_mm01(sysu_root).train
    kept = first_identities(train, 3)
    pids = sorted({s.pid for s in kept})
    both = sorted(
        {s.pid for s in train if s.modality is Modality.VISIBLE}
        & {s.pid for s in train if s.modality is Modality.INFRARED}
    )
    assert pids == both[:3]
    assert kept == [s for s in train if s.pid in pids]  # every image, original order
