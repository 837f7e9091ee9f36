"""``vireid info``: parameters, FLOPs at the recipe's resolution, feature dimension, recipe,
dataset fingerprint."""

import json

import pytest
import torch
from typer.testing import CliRunner

from vireid.cli import app
from vireid.config.schema import ModelCfg
from vireid.engine.model_facts import count_flops
from vireid.models import build_model

runner = CliRunner()


@pytest.mark.parametrize("arch,gmacs", [("resnet18", 1.814), ("resnet50", 4.089)])
def test_flops_of_a_plain_resnet_match_the_published_figure(arch, gmacs):
    """Without non-local blocks, with stride 2 and average pooling the network is
    torchvision's ResNet minus its fc layer: torchvision's model card gives 1.81 / 4.09
    GFLOPS (multiply-adds) at 224 × 224."""
    cfg = ModelCfg(arch=arch, last_stride=2, non_local=False, pooling="avg", pretrained=None)
    cost = count_flops(build_model(cfg, 0), 224, 224)
    fc = 2 * (512 if arch == "resnet18" else 2048) * 1000
    for mod in ("visible", "infrared"):
        assert (cost[mod] + fc) / 2e9 == pytest.approx(gmacs, rel=2e-3)
    assert cost["dim"] == (512 if arch == "resnet18" else 2048)


def test_flops_follow_the_resolution():
    cfg = ModelCfg(arch="resnet18", width=0.25, non_local=False, pretrained=None)
    model = build_model(cfg, 0)
    small, large = count_flops(model, 64, 32), count_flops(model, 128, 64)
    assert large["visible"] / small["visible"] == pytest.approx(4, rel=0.02)


def test_info_of_a_trained_checkpoint(checkpoint):
    from vireid.engine.checkpoint import load_checkpoint
    from vireid.engine.restore import model_from_checkpoint

    r = runner.invoke(app, ["info", str(checkpoint), "--json"])
    assert r.exit_code == 0, r.output
    facts = json.loads(r.output)
    model, cfg, _ = model_from_checkpoint(checkpoint)
    assert facts["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert facts["parameters"]["evaluation"] < facts["parameters"]["total"]  # classifier
    assert facts["dataset_fingerprint"] == load_checkpoint(checkpoint)["fingerprint"]
    assert facts["recipe"]["method"] == cfg.method.name
    assert facts["input"] == {
        "height": cfg.data.height,
        "width": cfg.data.width,
        "flip": cfg.eval.flip,
    }
    with torch.no_grad():
        feats = model.eval()(
            torch.zeros(2, 3, cfg.data.height, cfg.data.width), torch.tensor([0, 1])
        )["feat"]
    assert facts["feature_dim"] == feats.shape[1]
    assert facts["gflops"] > 0
    text = runner.invoke(app, ["info", str(checkpoint)], env={"COLUMNS": "200"}).output
    assert f"feature dim  {feats.shape[1]}" in text and "fingerprint" in text
    r = runner.invoke(app, ["info", str(checkpoint.parent / "none.pt")])
    assert r.exit_code == 2 and "none.pt" in r.output
