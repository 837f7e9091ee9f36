"""``vireid import``: released AGW / CAJ / DDAG / MMM checkpoints as vireid checkpoints.

The fixture ``data/community_embed_net.json`` lists their networks' state-dict key names
and shapes (facts, written by ``benchmarks/parity/features.py --write-fixture`` from their
model code; no code or values). Tests build checkpoints with those keys, at 1/8 of the
channels so they stay instant, and check every tensor lands where their forward pass uses
it. Feature equality with their model code itself is ``benchmarks/parity/features.py``.
"""

from __future__ import annotations

import json
import zipfile
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vireid.cli import app
from vireid.engine.restore import load_model
from vireid.models.community import map_embed_net, read_community_checkpoint
from vireid.models.weights import WeightsError

runner = CliRunner()
FIXTURE = json.loads((Path(__file__).parent / "data" / "community_embed_net.json").read_text())


def fixture_keys(source: str) -> dict[str, list[int]]:
    entry = FIXTURE[source]
    if "keys" in entry:
        return {k: s for k, s in entry["keys"]}
    keys = fixture_keys(entry["like"])
    keys = {k: s for k, s in keys.items() if k not in entry["drop"]}
    keys.update({k: s for k, s in entry["add"]})
    return {entry["prefix"] + k: s for k, s in keys.items()}


def narrow(shape: list[int]) -> list[int]:
    """Channel counts (multiples of 64) at 1/8: a width-0.125 network of the same layout."""
    return [d // 8 if d >= 64 and d % 64 == 0 else d for d in shape]


def fake_checkpoint(path: Path, source: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Their checkpoint dict with these keys (distinct random values), metrics as numpy."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in fixture_keys(source).items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(narrow(shape), generator=g) + 0.5
        else:
            sd[k] = 0.05 * torch.randn(narrow(shape), generator=g)
    container = FIXTURE[source]["container"]
    metrics = {"cmc": np.linspace(0.4, 1, 20, dtype=np.float32), "mAP": np.float64(0.45)}
    torch.save({container: sd, "epoch": 80, **metrics}, path)
    return sd


def import_cli(src, out, *args):
    r = runner.invoke(app, ["import", str(src), str(out), "--size", "64x32", *args])
    return r


# Where the forward pass of embed_net reads each tensor, for one tensor of every kind.
LANDS = {
    "visible_module.visible.conv1.weight": "stems.0.0.weight",
    "visible_module.visible.bn1.running_mean": "stems.0.1.running_mean",
    "thermal_module.thermal.conv1.weight": "stems.1.0.weight",
    "thermal_module.thermal.bn1.bias": "stems.1.1.bias",
    "base_resnet.base.layer1.0.downsample.0.weight": "layers.0.0.downsample.0.weight",
    "base_resnet.base.layer4.2.conv3.weight": "layers.3.2.conv3.weight",
    "base_resnet.base.layer3.5.bn2.running_var": "layers.2.5.bn2.running_var",
    "NL_2.1.g.0.weight": "non_local.1.1.g.weight",
    "NL_3.0.theta.bias": "non_local.2.0.theta.bias",
    "NL_3.2.W.1.weight": "non_local.2.2.W.1.weight",
    "bottleneck.weight": "bottleneck.weight",
    "classifier.weight": "classifier.weight",
}


@pytest.mark.parametrize("source", sorted(FIXTURE))
def test_every_fixture_key_lands_where_their_forward_reads_it(source, tmp_path):
    src = tmp_path / "their.t"
    sd = {k.removeprefix("module."): v for k, v in fake_checkpoint(src, source).items()}
    args = ["--format", FIXTURE[source]["format"]]
    if "ddag" in source:
        args.append("--drop-heads")
    r = import_cli(src, tmp_path / "ours.pt", *args)
    assert r.exit_code == 0, r.output
    model, cfg, state, _ = load_model(tmp_path / "ours.pt", "cpu")
    ours = model.state_dict()
    checked = 0
    for theirs, key in LANDS.items():
        if theirs in sd:
            assert torch.equal(ours[key], sd[theirs]), (theirs, key)
            checked += 1
    assert checked >= (6 if "base" in source or "ddag" in source else 12)
    # nothing of theirs was left out but what their forward never reads
    used = {k for k in sd if not k.startswith(("bottleneck_2.", "wpa.", "attention_", "out_att"))}
    used -= {k for k in sd if k.startswith(("classifier1.", "classifier2."))}
    used = {k for k in used if ".layer" not in k or k.startswith("base_resnet.")}
    used = {k for k in used if not k.startswith(("base_resnet.base.conv1", "base_resnet.base.bn1"))}
    assert len(ours) == len(used)
    assert cfg.model.non_local == ("NL_2.0.g.0.weight" in sd)
    assert cfg.model.pooling == ("gem" if cfg.model.non_local else "avg")
    assert cfg.eval.flip == (FIXTURE[source]["format"] == "caj")  # CAJ's testa.py flips
    assert state["epoch"] == 80


def test_imported_checkpoint_evaluates_on_every_protocol(
    tmp_path, sysu_root, regdb_root, llcm_root
):
    src = tmp_path / "agw.t"
    fake_checkpoint(src, "agw")
    cases = [
        ([], sysu_root, ["sysu/all/single", "sysu/indoor/single", "sysu/all/multi"]),
        (["--dataset", "regdb", "--trial", "2"], regdb_root, ["regdb/v2t", "regdb/t2v"]),
        (["--dataset", "llcm"], llcm_root, ["llcm/i2v", "llcm/v2i"]),
    ]
    for args, root, protocols in cases:
        out = tmp_path / f"{protocols[0].split('/')[0]}.pt"
        r = import_cli(src, out, *args, "--root", str(root))
        assert r.exit_code == 0, r.output
        for protocol in protocols:
            r = runner.invoke(app, ["eval", str(out), "--protocol", protocol, "--trials", "1"])
            assert r.exit_code == 0, (protocol, r.output)
            assert f"csv: {protocol}," in r.output
    # a RegDB model is evaluated on the split it was trained on, and on no other
    r = runner.invoke(app, ["eval", str(tmp_path / "regdb.pt"), "--trial", "3"])
    assert r.exit_code == 2 and "trained on RegDB trial 2" in r.output


def test_numpy_metrics_load_also_under_numpy1_names(tmp_path):
    src = tmp_path / "agw.t"
    fake_checkpoint(src, "agw")
    # a checkpoint written with numpy 1.x names its globals numpy.core.multiarray.*
    old = tmp_path / "old.t"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(old, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(item, data)
    for path in (src, old):
        sd, meta = read_community_checkpoint(path)
        assert float(meta["mAP"]) == 0.45 and meta["cmc"].dtype == np.float32
        assert "NL_2.0.g.0.weight" in sd


def test_arbitrary_pickled_objects_are_refused(tmp_path):
    src = tmp_path / "args.t"
    torch.save({"net": {"classifier.weight": torch.zeros(2, 2)}, "args": Namespace(lr=0.1)}, src)
    r = import_cli(src, tmp_path / "o.pt")
    assert r.exit_code == 2
    assert "argparse.Namespace" in r.output and "never arbitrary pickled objects" in r.output
    assert not (tmp_path / "o.pt").exists()


def test_unmapped_keys_and_ddag_heads_are_refused_in_one_line(tmp_path):
    src = tmp_path / "extra.t"
    sd = fake_checkpoint(src, "agw")
    sd["mystery_head.weight"] = torch.zeros(3)
    torch.save({"net": sd}, src)
    r = import_cli(src, tmp_path / "o.pt")
    assert r.exit_code == 2 and "'mystery_head.weight' has no counterpart" in r.output
    assert len(r.output.strip().splitlines()) == 1
    ddag = tmp_path / "ddag.t"
    fake_checkpoint(ddag, "ddag (global branch, --drop-heads)")
    r = import_cli(ddag, tmp_path / "o.pt", "--format", "ddag")
    assert r.exit_code == 2 and "--drop-heads" in r.output
    del sd["mystery_head.weight"]
    with pytest.raises(WeightsError, match="residual blocks per stage"):
        map_embed_net({k: v for k, v in sd.items() if ".layer3.5." not in k})


def test_import_errors_name_the_value(tmp_path):
    r = import_cli(tmp_path / "missing.t", tmp_path / "o.pt")
    assert r.exit_code == 2 and "missing.t: checkpoint file does not exist" in r.output
    src = tmp_path / "agw.t"
    fake_checkpoint(src, "agw")
    r = import_cli(src, tmp_path / "o.pt", "--format", "agw2")
    assert r.exit_code == 2 and "--format 'agw2'" in r.output
    r = import_cli(src, tmp_path / "o.pt", "--trial", "2")
    assert r.exit_code == 2 and "only with --dataset regdb" in r.output
    r = import_cli(src, tmp_path / "o.safetensors")
    assert r.exit_code == 2 and "expected a .pt output path" in r.output
