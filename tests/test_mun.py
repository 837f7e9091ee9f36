"""MUN: auxiliary generator shapes and starting point, the two alignment losses against
naive loops, the pairing check, and instant CLI runs (with and without channel exchange)."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import run_overrides
from vireid.cli import app
from vireid.config import load_config
from vireid.losses.alignment import identity_alignment_loss, modality_alignment_loss
from vireid.losses.mmd import mmd2
from vireid.methods import build_method
from vireid.models import build_model
from vireid.models.auxiliary import AuxiliaryGenerator, IntraModalityLearner

INSTANT = Path(__file__).parents[1] / "configs" / "tests" / "instant.yaml"


@pytest.mark.parametrize("size", [(24, 12), (16, 8), (18, 9)])
@pytest.mark.parametrize("upsample", ["transposed", "bilinear"])
def test_generator_keeps_the_map_shape(size, upsample):
    gen = AuxiliaryGenerator(8, (2, 4, 6, 12), 0.5, upsample)
    fv, fr = torch.randn(3, 8, *size), torch.randn(3, 8, *size)
    assert gen(fv, fr).shape == fv.shape


def test_generator_starts_at_the_modality_average_and_learns():
    gen = AuxiliaryGenerator(8, (2, 4), layer_scale_init=0.0)
    fv, fr = torch.randn(2, 8, 12, 6), torch.randn(2, 8, 12, 6)
    out = gen(fv, fr)
    torch.testing.assert_close(out, 0.5 * (fv + fr))  # zero layer scales: the average
    out.square().sum().backward()
    assert gen.cml.scale.gamma.grad.abs().sum() > 0  # the scales still receive gradient
    with pytest.raises(ValueError, match="halves"):
        IntraModalityLearner(7, 1e-6)


def naive_ia(v, r, a, yv, yr, ya, margin):
    ids = sorted(set(ya.tolist()) & set(yv.tolist()) & set(yr.tolist()))

    def centre(x, y, i):
        c = x[y == i].mean(0)
        return c / c.norm()

    total = 0.0
    for i in ids:
        ca = centre(a, ya, i)
        pos = max((ca - centre(v, yv, i)).norm(), (ca - centre(r, yr, i)).norm())
        neg = min(
            (ca - centre(x, y, q)).norm() for q in ids if q != i for x, y in ((v, yv), (r, yr))
        )
        total += max(0.0, float(margin + pos - neg))
    return total


def test_alignment_losses_equal_naive_loops():
    g = torch.Generator().manual_seed(0)
    v, r, a = (torch.randn(12, 5, generator=g, dtype=torch.float64) for _ in range(3))
    yv = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    yr, ya = yv.roll(2), yv.clone()
    for margin in (0.0, 0.55, 2.0):
        ours = identity_alignment_loss(v, r, a, yv, yr, ya, margin)
        assert float(ours) == pytest.approx(naive_ia(v, r, a, yv, yr, ya, margin), rel=1e-9)
    ma = modality_alignment_loss(v, r, a, yv, yr, ya)
    expect = sum(
        float(mmd2(v[yv == p], a[ya == p]) + mmd2(a[ya == p], r[yr == p])) for p in range(6)
    )
    assert float(ma) == pytest.approx(expect / 6, rel=1e-9)
    one = torch.zeros(2, dtype=torch.long)
    assert float(identity_alignment_loss(v[:2], r[:2], a[:2], one, one, one)) == 0.0


def test_mun_refuses_unpaired_batches():
    cfg = load_config(INSTANT, ["method.name=mun"])
    method = build_method(cfg.method, build_model(cfg.model, num_classes=4))
    batch = {
        "images": torch.rand(4, 3, 64, 32),
        "labels": torch.tensor([0, 1, 1, 0]),  # infrared block in another identity order
        "modality": torch.tensor([0, 0, 1, 1]),
    }
    with pytest.raises(ValueError, match="same identity order"):
        method.training_step(batch)


@pytest.mark.parametrize("extra", [[], ["data.augment.channel_exchange=true"]])
def test_mun_trains_through_the_cli(sysu_root, tmp_path, extra):
    out = tmp_path / "run"
    args = ["train", str(INSTANT), *run_overrides(sysu_root, out, tmp_path / "c")]
    args += ["method.name=mun", "train.optimizer=adamw"]
    r = CliRunner().invoke(app, [*args, "train.lr=0.002", *extra])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(k in rows[-1] for k in ("id", "triplet", "idc", "ia", "ma", "acc"))
    assert (out / "results.json").is_file()
