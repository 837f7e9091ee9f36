"""vireid's own safetensors export loads back: ``vireid eval``, ``train.init_from`` and
``model.pretrained`` accept it."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from vireid.cli import app
from vireid.config import load_config
from vireid.engine.builders import init_weights
from vireid.engine.checkpoint import CheckpointError, load_checkpoint
from vireid.models import build_model

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(sysu_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    run = tmp / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "configs/tests/instant.yaml",
            f"data.dataset.root={sysu_root}",
            f"output_dir={run}",
            f"data.cache_dir={tmp / 'c'}",
            "train.epochs=1",
        ],
    )
    assert r.exit_code == 0, r.output
    out = tmp / "w.safetensors"
    r = runner.invoke(app, ["export", str(run / "last.pt"), str(out)])
    assert r.exit_code == 0, r.output
    return run / "last.pt", out


def _csv(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("csv: "))


def test_eval_of_the_export_equals_eval_of_the_checkpoint(exported, sysu_root):
    ckpt, st = exported
    args = ["--trials", "2", "--root", str(sysu_root), "--protocol", "sysu/all/single"]
    a = runner.invoke(app, ["eval", str(ckpt), *args])
    b = runner.invoke(app, ["eval", str(st), *args])
    assert a.exit_code == 0 and b.exit_code == 0, b.output
    assert _csv(a.output) == _csv(b.output)
    state = load_checkpoint(st)
    assert state["config"]["model"]["arch"] == "resnet18" and "optimizer" not in state


def test_init_from_an_export(exported):
    _, st = exported
    cfg = load_config("configs/tests/instant.yaml", [f"train.init_from={st}"])  # chain check
    model = build_model(cfg.model, 0)
    init_weights(model, cfg.train.init_from)
    weights = load_file(st)
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[f"model.{k}"]), k


def test_pretrained_from_an_export_takes_its_backbone(exported):
    _, st = exported
    cfg = load_config("configs/tests/instant.yaml", [f"model.pretrained={st}"])
    model = build_model(cfg.model, 5)
    weights = load_file(st)
    backbone = [k for k in model.state_dict() if k.startswith(("stems.", "layers."))]
    assert len(backbone) > 50
    for k in backbone:
        assert torch.equal(model.state_dict()[k], weights[f"model.{k}"]), k
    # the head is new: the export's classifier had another class count
    assert model.classifier.weight.shape[0] == 5


def test_an_export_cannot_resume_and_needs_its_sidecar(exported, sysu_root, tmp_path):
    _, st = exported
    r = runner.invoke(
        app,
        [
            "train",
            "configs/tests/instant.yaml",
            f"data.dataset.root={sysu_root}",
            f"output_dir={tmp_path / 'r'}",
            f"data.cache_dir={tmp_path / 'c'}",
            "--resume",
            str(st),
        ],
    )
    assert r.exit_code == 2 and "holds weights only" in r.output
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(st.read_bytes())
    with pytest.raises(CheckpointError, match=r"no bare.json next to it"):
        load_checkpoint(bare)
    r = runner.invoke(app, ["eval", str(bare), "--root", str(sysu_root)])
    assert r.exit_code == 2 and "bare.json" in r.output
