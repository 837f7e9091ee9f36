"""Recipe chains: ``train.init_from: recipe:PATH`` resolves to that recipe's checkpoint, and a
producer with another model is refused at config load, naming both architectures."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vireid.cli import app
from vireid.config import ConfigError, load_config
from vireid.config.chains import check_model_compat, resolve_checkpoint
from vireid.engine.builders import init_weights
from vireid.engine.checkpoint import CheckpointError
from vireid.models import build_model

CONFIGS = Path(__file__).parents[1] / "configs"
STAGE_A = CONFIGS / "unsupervised" / "cluster_contrast_sysu.yaml"


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_chain_resolves_to_the_producers_checkpoint():
    cfg = load_config(CONFIGS / "unsupervised" / "adca_sysu.yaml")
    ref = resolve_checkpoint(cfg.train.init_from)
    assert ref.recipe == STAGE_A.resolve()
    assert ref.path == Path("runs/cc_sysu/last.pt")  # stage A's output_dir, cwd-relative
    assert ref.model["arch"] == "resnet50" and ref.model["non_local"] is False


def test_reference_is_relative_to_the_file_that_writes_it(tmp_path, monkeypatch):
    a = _write(tmp_path / "chain" / "a.yaml", {"output_dir": str(tmp_path / "run_a")})
    _write(tmp_path / "chain" / "base_b.yaml", {"train": {"init_from": "recipe:a.yaml"}})
    b = _write(tmp_path / "elsewhere" / "b.yaml", {"_base_": "../chain/base_b.yaml"})
    monkeypatch.chdir(tmp_path / "elsewhere")  # neither the cwd nor b's folder holds a.yaml
    cfg = load_config(b)
    assert cfg.train.init_from == f"recipe:{a.resolve()}"
    assert resolve_checkpoint(cfg.train.init_from).path == tmp_path / "run_a" / "last.pt"


def test_command_line_reference_is_relative_to_the_cwd(monkeypatch):
    monkeypatch.chdir(CONFIGS / "unsupervised")
    cfg = load_config("adca_sysu.yaml", ["train.init_from=recipe:cluster_contrast_sysu.yaml"])
    assert cfg.train.init_from == f"recipe:{STAGE_A.resolve()}"  # stored absolute


def test_incompatible_producer_is_refused_at_load_naming_both_models():
    """Today's PGM stage 2 (non-local on) chained to the shipped stage 1 (non-local off)."""
    with pytest.raises(ConfigError) as e:
        load_config(
            CONFIGS / "unsupervised" / "pgm_sysu.yaml",
            [f"train.init_from=recipe:{STAGE_A}"],
        )
    msg = str(e.value)
    assert "model.non_local off there vs on here" in msg
    assert msg.count("two_stream resnet50") == 2  # both architectures, named
    assert "cluster_contrast_sysu.yaml" in msg


def test_arch_and_width_mismatches_are_named():
    over = [f"train.init_from=recipe:{STAGE_A}", "model.arch=resnet18", "model.width=0.5"]
    with pytest.raises(ConfigError, match="model.arch resnet50 there vs resnet18 here"):
        load_config(CONFIGS / "unsupervised" / "adca_sysu.yaml", over)
    with pytest.raises(ConfigError, match="model.width 1 there vs 0.5 here"):
        load_config(CONFIGS / "unsupervised" / "adca_sysu.yaml", over[:1] + over[2:])


def test_only_pretrained_may_differ():
    over = [f"train.init_from=recipe:{STAGE_A}", "model.pretrained=null"]
    cfg = load_config(CONFIGS / "unsupervised" / "adca_sysu.yaml", over)
    assert cfg.model.pretrained is None


def test_circular_chain_is_an_error(tmp_path):
    _write(tmp_path / "a.yaml", {"train": {"init_from": "recipe:b.yaml"}})
    _write(tmp_path / "b.yaml", {"train": {"init_from": "recipe:a.yaml"}})
    with pytest.raises(ConfigError, match="circular recipe chain"):
        load_config(tmp_path / "a.yaml")


def test_existing_checkpoint_path_is_compared_at_load(checkpoint):
    """A plain path to an existing checkpoint: its stored model section is compared."""
    with pytest.raises(ConfigError) as e:
        load_config(CONFIGS / "supervised" / "agw_sysu.yaml", [f"train.init_from={checkpoint}"])
    assert "two_stream resnet18" in str(e.value) and "two_stream resnet50" in str(e.value)
    stored = yaml.safe_load((checkpoint.parent / "config.yaml").read_text())["model"]
    over = [f"model.{k}={v}" for k, v in stored.items() if k != "pretrained"]
    over.append("model.pretrained=null")
    cfg = load_config(
        CONFIGS / "supervised" / "agw_sysu.yaml", [f"train.init_from={checkpoint}", *over]
    )
    ref = resolve_checkpoint(cfg.train.init_from)
    check_model_compat(ref, cfg.model.model_dump(mode="json"))  # equal models pass
    init_weights(build_model(cfg.model, 3), cfg.train.init_from)


def test_missing_producer_checkpoint_names_the_recipe_to_train(tmp_path):
    a = _write(tmp_path / "a.yaml", {"output_dir": str(tmp_path / "never_ran")})
    cfg = load_config(None, [f"train.init_from=recipe:{a}"])  # loads: nothing trained yet
    expected = r"a.yaml's checkpoint .*never_ran/last.pt does not exist; train that recipe"
    with pytest.raises(CheckpointError, match=expected):
        init_weights(build_model(cfg.model, 0), cfg.train.init_from)


def test_cli_prints_the_refusal_as_one_line():
    r = CliRunner().invoke(
        app,
        [
            "config",
            "validate",
            str(CONFIGS / "unsupervised" / "pgm_sysu.yaml"),
            f"train.init_from=recipe:{STAGE_A}",
        ],
    )
    assert r.exit_code == 2
    assert "non_local" in r.output and "Traceback" not in r.output
