from pathlib import Path

import pytest

from vireid.config import ConfigError, load_config
from vireid.config.loader import parse_override

CONFIGS = Path(__file__).parents[1] / "configs"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_base_inheritance_merges_dicts(tmp_path):
    write(tmp_path, "base.yaml", "train: {lr: 0.5, epochs: 3}\ndata: {height: 64}\n")
    child = write(tmp_path, "child.yaml", "_base_: base.yaml\ntrain: {epochs: 7}\n")
    cfg = load_config(child)
    assert cfg.train.lr == 0.5 and cfg.train.epochs == 7 and cfg.data.height == 64


def test_multi_level_and_list_bases(tmp_path):
    write(tmp_path, "a.yaml", "train: {lr: 0.1}\n")
    write(tmp_path, "b.yaml", "_base_: a.yaml\ntrain: {epochs: 2}\n")
    write(tmp_path, "c.yaml", "train: {seed: 9}\n")
    d = write(tmp_path, "d.yaml", "_base_: [b.yaml, c.yaml]\n")
    cfg = load_config(d)
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.seed) == (0.1, 2, 9)


def test_circular_base_is_an_error(tmp_path):
    write(tmp_path, "x.yaml", "_base_: y.yaml\n")
    y = write(tmp_path, "y.yaml", "_base_: x.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(y)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("train.lr=3.5e-4", (["train", "lr"], 3.5e-4)),
        ("data.batch.num_instances=16", (["data", "batch", "num_instances"], 16)),
        ("train.amp=bf16", (["train", "amp"], "bf16")),
        ("train.milestones=[20, 40]", (["train", "milestones"], [20, 40])),
        ("model.pretrained=null", (["model", "pretrained"], None)),
        ("eval.flip=true", (["eval", "flip"], True)),
    ],
)
def test_override_parsing(text, expected):
    assert parse_override(text) == expected


def test_overrides_apply_and_validate():
    cfg = load_config(
        None,
        ["train.lr=3.5e-4", "data.batch.num_instances=16", "method.name=caj", "method.alpha=2"],
    )
    assert cfg.train.lr == 3.5e-4 and cfg.data.batch.num_instances == 16
    assert cfg.method.name == "caj" and cfg.method.alpha == 2


def test_unknown_key_names_full_path_and_suggestion():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["data.batch.num_instance=4"])
    msg = str(e.value)
    assert "'data.batch.num_instance'" in msg
    assert "Did you mean 'data.batch.num_instances'" in msg


def test_unknown_key_inside_union_member():
    with pytest.raises(ConfigError, match=r"'method.alpah'.*Did you mean 'method.alpha'"):
        load_config(None, ["method.name=caj", "method.alpah=1"])
    # 'alpha' belongs to caj, not agw: the check follows the discriminator
    with pytest.raises(ConfigError, match="'method.alpha'"):
        load_config(None, ["method.name=agw", "method.alpha=1"])


def test_unknown_discriminator_value():
    with pytest.raises(ConfigError, match=r"method.name: unknown value 'agv'.*Did you mean 'agw'"):
        load_config(None, ["method.name=agv"])


def test_bad_types_name_the_key():
    with pytest.raises(ConfigError, match=r"train.epochs: .*got 'many'"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="train.amp"):
        load_config(None, ["train.amp=fp8"])
    with pytest.raises(ConfigError, match="data.dataset.trial"):
        load_config(None, ["data.dataset.name=regdb", "data.dataset.trial=11"])


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = write(tmp_path, "bad.yaml", "train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="must look like"):
        load_config(None, ["train.lr"])


RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if "_base_" not in p.parts)  # bases: partial


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_validates(path):
    load_config(path)


def test_switching_a_union_member_replaces_the_base_section(tmp_path):
    write(tmp_path, "base.yaml", "method: {name: cluster_contrast, cross: pgm}\n")
    child = write(tmp_path, "child.yaml", "_base_: base.yaml\nmethod: {name: mmm}\n")
    cfg = load_config(child)
    assert cfg.method.name == "mmm"  # 'cross' (a cluster_contrast key) did not leak in
    same = write(
        tmp_path,
        "same.yaml",
        "_base_: base.yaml\nmethod: {name: cluster_contrast, momentum: 0.2}\n",
    )
    cfg = load_config(same)
    assert cfg.method.cross == "pgm" and cfg.method.momentum == 0.2


def test_recipes_by_name_and_by_the_readme_path_from_anywhere(tmp_path, monkeypatch):
    from vireid.config import ConfigError
    from vireid.config.recipes import resolve_recipe

    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    assert resolve_recipe("mmm_sysu") == CONFIGS.resolve() / "unsupervised" / "mmm_sysu.yaml"
    assert resolve_recipe("quickstart/agw_synth").name == "agw_synth.yaml"
    assert resolve_recipe("configs/tests/instant.yaml").parent.name == "tests"
    assert load_config("instant", ["train.epochs=1"]).train.epochs == 1
    with pytest.raises(ConfigError, match="did you mean unsupervised/mmm_sysu"):
        resolve_recipe("mmm_sysuu")
    (tmp_path / "mine.yaml").write_text("train: {epochs: 3}\n")
    assert load_config("mine.yaml").train.epochs == 3  # a file that exists wins
