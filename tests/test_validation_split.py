"""best.pt from a validation split carved out of the training identities (data.val_ids):
the test set never picks the epoch."""

import json

import pytest

from conftest import run_overrides
from vireid.config import ConfigError, load_config
from vireid.data.holdout import hold_out_ids
from vireid.data.records import Modality
from vireid.engine.run import train, training_splits


def test_hold_out_takes_whole_identities_out_of_training(sysu_root, tmp_path):
    cfg = load_config("configs/tests/instant.yaml", run_overrides(sysu_root, tmp_path, tmp_path))
    splits = training_splits(cfg)
    rest, val = hold_out_ids(splits.train, 3, seed=0)
    assert len(val.pids) == 3 and not {s.pid for s in rest} & set(val.pids)
    assert len(rest) + len(val.query) + len(val.gallery) == len(splits.train)
    assert {s.modality for s in val.query} == {Modality.INFRARED}
    assert {s.modality for s in val.gallery} == {Modality.VISIBLE}
    assert {s.pid for s in val.query} == {s.pid for s in val.gallery} == set(val.pids)
    assert not set(val.pids) & set(splits.test_ids)  # training identities, never test ones
    assert hold_out_ids(splits.train, 3, seed=0)[1].pids == val.pids  # seeded
    assert hold_out_ids(splits.train, 3, seed=1)[1].pids != val.pids
    with pytest.raises(ValueError, match="data.val_ids=1000"):
        hold_out_ids(splits.train, 1000, seed=0)


def test_best_pt_is_the_best_validation_epoch(sysu_root, tmp_path):
    run = tmp_path / "run"
    over = [*run_overrides(sysu_root, run, tmp_path / "c"), "train.epochs=3", "eval.trials=1"]
    cfg = load_config("configs/tests/instant.yaml", [*over, "data.val_ids=4", "eval.every=1"])
    out = train(cfg)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_mAP"] for r in rows]
    assert len(vals) == 3  # every epoch, the last one included
    best = json.loads((run / "best.json").read_text())
    assert best["epoch"] == 1 + vals.index(max(vals))
    assert best["validation"]["mAP"] == pytest.approx(max(vals))
    from vireid.engine.checkpoint import load_checkpoint

    state = load_checkpoint(run / "best.pt")
    assert state["epoch"] == best["epoch"]
    assert load_checkpoint(run / "last.pt")["fingerprint"] == state["fingerprint"]
    # the reported result is the last epoch's on the test set, not a selection
    res = json.loads((run / "results.json").read_text())
    assert res["selected_on_test_epoch"] is None and out["eval"]["protocol"] == "sysu/all/single"
    # the held-out identities left training: another training list, another fingerprint
    plain = train(
        load_config(
            "configs/tests/instant.yaml", [*over, "train.epochs=1", f"output_dir={tmp_path / 'p'}"]
        )
    )
    assert load_checkpoint(tmp_path / "p" / "last.pt")["fingerprint"] != state["fingerprint"]
    assert plain["eval"]["protocol"] == "sysu/all/single"


def test_select_on_test_and_a_validation_split_exclude_each_other(sysu_root, tmp_path):
    cfg = load_config(
        "configs/tests/instant.yaml",
        [
            *run_overrides(sysu_root, tmp_path / "r", tmp_path),
            "data.val_ids=2",
            "eval.every=1",
            "eval.select_on_test=true",
        ],
    )
    with pytest.raises(ConfigError, match="select_on_test"):
        train(cfg)
