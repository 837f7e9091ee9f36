import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vireid.cli import app

runner = CliRunner()
COMMANDS = [
    [],
    ["config"],
    ["config", "show"],
    ["config", "validate"],
    ["config", "schema"],
    ["data"],
    ["data", "check"],
    ["list"],
    ["env"],
    ["info"],
    ["synth"],
    ["eval"],
    ["train"],
    ["export"],
    ["index"],
    ["search"],
    ["serve"],
    ["demo"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_of_every_command(cmd):
    r = runner.invoke(app, [*cmd, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output


@pytest.mark.parametrize(
    "kind,name",
    [
        ("datasets", "sysu_mm01"),
        ("methods", "caj"),
        ("models", "two_stream"),
        ("protocols", "llcm/v2i"),
        ("recipes", "unsupervised/mmm_sysu"),
    ],
)
def test_list(kind, name):
    r = runner.invoke(app, ["list", kind])
    assert r.exit_code == 0 and name in r.output


def test_config_show_validate_and_errors(tmp_path):
    r = runner.invoke(app, ["config", "show", "configs/supervised/caj_sysu.yaml", "train.lr=0.05"])
    assert r.exit_code == 0 and "lr: 0.05" in r.output and "channel_exchange: true" in r.output
    r = runner.invoke(
        app, ["config", "validate", "configs/supervised/agw_sysu.yaml", "train.epoch=3"]
    )
    assert r.exit_code == 2
    assert "unknown config key 'train.epoch'" in r.output and "train.epochs" in r.output
    r = runner.invoke(app, ["config", "schema"])
    assert r.exit_code == 0 and json.loads(r.output)["title"] == "RunCfg"


def test_env():
    r = runner.invoke(app, ["env", "--json"])
    assert r.exit_code == 0 and "torch" in json.loads(r.output)["packages"]


def test_synth_and_check(tmp_path):
    out = tmp_path / "s"
    r = runner.invoke(
        app, ["synth", "--layout", "sysu", "--out", str(out), "--ids", "10", "--size", "48x24"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "check", "sysu_mm01", "--root", str(out)])
    assert r.exit_code == 0 and "OK" in r.output and "train_ids" in r.output
    r = runner.invoke(app, ["data", "check", "sysu_mm01", "--root", str(out), "--strict"])
    assert r.exit_code == 1  # the synthetic proxy does not have SYSU's 395 ids
    r = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--size", "big"])
    assert r.exit_code == 2 and "expected HxW" in r.output


def test_data_check_reports_faults_by_path(sysu_copy):
    jpgs = sorted((sysu_copy / "cam1").rglob("*.jpg"))
    jpgs[0].write_bytes(jpgs[0].read_bytes()[:200])  # truncated
    jpgs[1].write_bytes(b"plain text, not an image")
    r = runner.invoke(app, ["data", "check", "sysu_mm01", "--root", str(sysu_copy)])
    assert r.exit_code == 1
    flat = r.output.replace("\n", "")
    assert jpgs[0].name in flat and jpgs[1].name in flat and "FAILED" in r.output
    (sysu_copy / "exp" / "test_id.txt").unlink()
    r = runner.invoke(app, ["data", "check", "sysu_mm01", "--root", str(sysu_copy)])
    assert r.exit_code == 1 and "test_id.txt" in r.output.replace("\n", "")


def test_data_check_regdb_missing_root(tmp_path):
    r = runner.invoke(app, ["data", "check", "regdb", "--root", str(tmp_path / "none")])
    assert r.exit_code == 1 and "expected a directory" in r.output


def _features_file(tmp_path, sysu_root, split=False):
    from vireid.data.protocols import query_gallery
    from vireid.evaluation.features import save_features

    q, _ = query_gallery("sysu/all/single", sysu_root, 0)
    gall = sorted(
        {s for t in range(10) for s in query_gallery("sysu/all/single", sysu_root, t)[1]},
        key=lambda s: s.path,
    )
    samples = q + gall
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(100, 8))
    feats = centers[[s.pid for s in samples]] + 0.8 * rng.normal(size=(len(samples), 8))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    path = tmp_path / "f.npz"
    save_features(
        path, feats, samples, ["query"] * len(q) + ["gallery"] * len(gall) if split else None
    )
    return path


def test_eval_features_file(tmp_path, sysu_root):
    path = _features_file(tmp_path, sysu_root)
    r = runner.invoke(
        app,
        [
            "eval",
            "--features",
            str(path),
            "--protocol",
            "sysu/all/single",
            "--root",
            str(sysu_root),
            "--trials",
            "3",
            "--out",
            str(tmp_path / "res"),
            "--report",
            str(tmp_path / "rep"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "res" / "results.json").read_text())
    assert len(res["trials"]) == 3 and res["mean"]["mAP"] > 20
    for f in ("index.html", "ranks.csv", "cmc.png", "distances.png"):
        assert (tmp_path / "rep" / f).is_file()
    import csv

    rows = list(csv.DictReader((tmp_path / "rep" / "ranks.csv").open()))
    cam3 = [r for r in rows if r["camid"] == "3"]
    assert cam3 and len(rows) == len(set(r["query"] for r in rows))
    # the report shows the list the metrics use: no cam2 gallery image for cam3 queries
    assert not any("/cam2/" in r[k] for r in cam3 for k in r if k.startswith("rank"))
    r = runner.invoke(
        app,
        [
            "eval",
            "--features",
            str(path),
            "--protocol",
            "sysu/all/single",
            "--root",
            str(sysu_root),
            "--rerank",
            "--trials",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "(re-ranked)" in " ".join(r.output.split())


def test_eval_features_with_explicit_split(tmp_path, sysu_root):
    path = _features_file(tmp_path, sysu_root, split=True)
    r = runner.invoke(app, ["eval", "--features", str(path), "--protocol", "sysu/all/single"])
    assert r.exit_code == 0, r.output
    assert "csv: sysu/all/single," in r.output


def test_eval_errors(tmp_path):
    r = runner.invoke(app, ["eval"])
    assert r.exit_code == 2 and "exactly one of" in r.output
    bad = tmp_path / "bad.npz"
    np.savez(bad, feats=np.zeros((2, 3)))
    r = runner.invoke(app, ["eval", "--features", str(bad), "--protocol", "sysu/all/single"])
    assert r.exit_code == 2 and "missing arrays" in r.output


def test_train_eval_export_roundtrip(sysu_root, tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "configs/tests/instant.yaml",
            f"data.dataset.root={sysu_root}",
            f"output_dir={run}",
            f"data.cache_dir={tmp_path / 'c'}",
            "train.epochs=1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "R1" in r.output and (run / "results.json").is_file()
    r = runner.invoke(
        app,
        [
            "eval",
            str(run / "last.pt"),
            "--trials",
            "2",
            "--root",
            str(sysu_root),
            "--protocol",
            "sysu/indoor/single",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "sysu/indoor/single: mean ± std over 2 trial(s)" in r.output.replace("\n", " ")
    r = runner.invoke(app, ["export", str(run / "last.pt"), str(tmp_path / "w.safetensors")])
    assert r.exit_code == 0 and (tmp_path / "w.json").is_file()
    from safetensors.torch import load_file

    assert "model.bottleneck.weight" in load_file(tmp_path / "w.safetensors")


def test_train_bad_config_and_missing_weights(sysu_root, tmp_path):
    r = runner.invoke(app, ["train", "configs/tests/instant.yaml", "train.lrr=1"])
    assert r.exit_code == 2 and "Did you mean 'train.lr'" in r.output
    r = runner.invoke(
        app,
        [
            "train",
            "configs/tests/instant.yaml",
            f"data.dataset.root={sysu_root}",
            f"output_dir={tmp_path / 'w'}",
            f"data.cache_dir={tmp_path / 'c'}",
            f"model.pretrained={tmp_path / 'nope.pth'}",
        ],
    )
    assert r.exit_code == 2 and "nope.pth does not exist" in r.output.replace("\n", "")


def test_eval_folder_protocol_from_manifest(tmp_path):
    """The folder protocol reads its query/gallery from a CSV manifest, not only a tree:
    the query ids' features equal their gallery match, so R1 is 100 %."""
    from conftest import write_image
    from vireid.data.records import Modality, Sample
    from vireid.evaluation.features import save_features

    rows, samples = ["split,path,pid,camid,modality"], []
    for pid in range(4):
        for split, mod, cam in [("query", "ir", 2), ("gallery", "rgb", 1)]:
            rel = f"imgs/{split}_{pid}.png"
            write_image(tmp_path / rel)
            rows.append(f"{split},{rel},{pid},{cam},{mod}")
            m = Modality.INFRARED if mod == "ir" else Modality.VISIBLE
            samples.append(Sample(str(tmp_path / rel), pid, cam, m))
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    feats = np.repeat(np.eye(4, dtype=np.float32), 2, axis=0)
    path = save_features(tmp_path / "f.npz", feats, samples)
    args = ["eval", "--features", str(path), "--protocol", "folder", "--out", str(tmp_path)]
    r = runner.invoke(app, [*args, "--manifest", str(tmp_path / "m.csv")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "results.json").read_text())["mean"]["R1"] == 100.0
    r = runner.invoke(app, [*args, "--manifest", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2 and "missing.csv" in r.output
