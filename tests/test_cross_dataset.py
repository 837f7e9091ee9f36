"""Cross-dataset evaluation: a checkpoint trained on one dataset evaluated on another's
protocols, several protocols in one call, the datasets named in the results; a RegDB
model still only on the trial it was trained on."""

import json

import pytest
from typer.testing import CliRunner

from conftest import run_overrides
from vireid.cli import app

runner = CliRunner()


def test_sysu_model_on_regdb_and_sysu_protocols_in_one_call(
    checkpoint, sysu_root, regdb_root, tmp_path
):
    out = tmp_path / "res"
    r = runner.invoke(
        app,
        [
            "eval",
            str(checkpoint),
            "--protocol",
            "sysu/indoor/single,regdb/v2t",
            "--protocol",
            "regdb/t2v",
            "--root",
            str(sysu_root),
            "--root",
            f"regdb={regdb_root}",
            "--trials",
            "2",
            "--out",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())  # a title wraps to its table's width
    assert "regdb/v2t: mean ± std over 2 trial(s) (trained on sysu_mm01)" in flat
    assert "sysu/indoor/single: mean ± std over 2 trial(s) ┏" in flat  # not cross
    for name, test in [
        ("sysu_indoor_single", "sysu_mm01"),
        ("regdb_v2t", "regdb"),
        ("regdb_t2v", "regdb"),
    ]:
        res = json.loads((out / name / "results.json").read_text())
        assert res["train_dataset"] == "sysu_mm01" and res["test_dataset"] == test
        # a SYSU model saw no RegDB identity: any RegDB trial is a fair test
        assert len(res["trials"]) == 2
    if_regdb = json.loads((out / "regdb_v2t" / "results.json").read_text())
    assert [t["trial"] for t in if_regdb["trials"]] == [1, 2]
    assert if_regdb["trials"][0]["num_query"] == 6 * 4  # RegDB's visible test images
    lines = (out / "results.csv").read_text().splitlines()
    assert [x.split(",")[0] for x in lines[1:]] == ["sysu/indoor/single", "regdb/v2t", "regdb/t2v"]


def test_another_datasets_protocol_needs_its_root(checkpoint):
    r = runner.invoke(app, ["eval", str(checkpoint), "--protocol", "regdb/v2t"])
    assert r.exit_code == 2
    assert "--root regdb=PATH" in " ".join(r.output.split())


@pytest.fixture(scope="module")
def regdb_checkpoint(regdb_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("regdb") / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "configs/tests/instant.yaml",
            *run_overrides(regdb_root, run, run.parent / "c"),
            "data.dataset.name=regdb",
            "data.dataset.trial=3",
            "eval.protocol=regdb/v2t",
            "data.batch.num_ids=2",
            "train.epochs=1",
        ],
    )
    assert r.exit_code == 0, r.output
    return run / "last.pt"


def test_regdb_model_stays_on_its_trial_but_may_test_elsewhere(
    regdb_checkpoint, regdb_root, sysu_root, tmp_path
):
    r = runner.invoke(
        app, ["eval", str(regdb_checkpoint), "--protocol", "regdb/t2v", "--trial", "4"]
    )
    assert r.exit_code == 2 and "would test on training ids" in " ".join(r.output.split())
    out = tmp_path / "r"
    r = runner.invoke(
        app,
        ["eval", str(regdb_checkpoint), "--protocol", "regdb/t2v", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert [t["trial"] for t in res["trials"]] == [3]
    assert res["train_dataset"] == res["test_dataset"] == "regdb"
    r = runner.invoke(
        app,
        [
            "eval",
            str(regdb_checkpoint),
            "--protocol",
            "sysu/all/single",
            "--root",
            str(sysu_root),
            "--trials",
            "1",
            "--out",
            str(out / "sysu"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((out / "sysu" / "results.json").read_text())
    assert (res["train_dataset"], res["test_dataset"]) == ("regdb", "sysu_mm01")
