"""The effects table's verdicts: a contrast row ``(a0 − a1) − (b0 − b1)`` paired by seed
(e.g. whether MAUM's unidirectional gain holds under modality imbalance), rendered in the
table, and every contrast of benchmarks/effects/*.yaml naming rows of its group."""

import json
import sys
from pathlib import Path

import pytest
import yaml

BENCH = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_effects  # noqa: E402
import effects_table  # noqa: E402


def _row(name, runs, seeds=(0, 1, 2, 3)):
    return {"name": name, "seed_ids": list(seeds), "R1": {"runs": runs}}


def test_contrast_compares_two_gains_paired_by_seed():
    # gain balanced 10, 11, 9, 10; imbalanced 5, 7, 4, 6: it shrinks by 4.5 ± 0.29
    rows = {
        "full": _row("full", [50, 51, 49, 50]),
        "off": _row("off", [40, 40, 40, 40]),
        "imb full": _row("imb full", [45, 47, 44, 46]),
        "imb off": _row("imb off", [40, 40, 40, 40]),
    }
    spec = {"name": "gain, imb − bal", "a": ["imb full", "imb off"], "b": ["full", "off"]}
    c = bench_effects.contrast(rows, {**spec, "direction": 1})
    assert c["a_diff"] == pytest.approx(5.5) and c["b_diff"] == pytest.approx(10.0)
    e = c["effect"]
    assert e["paired"] and e["diff"] == pytest.approx(-4.5) and e["verdict"] == "opposite"
    assert e["se"] == pytest.approx(0.288675, rel=1e-5)
    assert e["dof"] == 3 and e["crit"] == pytest.approx(3.182446, rel=1e-5)  # t(0.975, 3)
    assert bench_effects.contrast(rows, {**spec, "direction": -1})["effect"]["verdict"] == (
        "reproduced"
    )
    assert bench_effects.contrast({"full": rows["full"]}, {**spec, "direction": 1}) is None


def test_the_bar_is_the_t_quantile_of_the_paired_seeds():
    # differences 1.0, 1.6, 0.4: mean 1.0, SE 0.346; beyond 2 SE (0.69), inside the
    # two-sided 95 % bar of two degrees of freedom, t = 4.30 (1.49)
    row, ref = _row("a", [51.0, 51.6, 50.4], (0, 1, 2)), _row("b", [50.0] * 3, (0, 1, 2))
    e = bench_effects.verdict(row, ref, 1)
    assert e["se"] == pytest.approx(0.34641, rel=1e-4) and e["dof"] == 2
    assert e["crit"] == pytest.approx(4.302653, rel=1e-5) and e["verdict"] == "within spread"
    row = _row("a", [52.0, 52.6, 51.4], (0, 1, 2))  # 2.0: beyond 1.49
    assert bench_effects.verdict(row, ref, 1)["verdict"] == "reproduced"
    assert bench_effects.verdict(row, ref, -1)["verdict"] == "opposite"


def test_contrast_rows_are_rendered(tmp_path, monkeypatch):
    c = {"name": "gain", "a": ["A", "B"], "b": ["C", "D"], "a_diff": 1.0, "b_diff": 3.0}
    c |= {"paper_direction": 1, "effect": {"verdict": "opposite", "diff": -2.0, "se": 0.5}}
    doc = {
        "seeds": [0, 1],
        "dataset": {},
        "groups": [{"group": "m", "method": "m", "rows": [], "contrasts": [c]}],
    }
    (tmp_path / "fx.json").write_text(json.dumps(doc))
    monkeypatch.setattr(effects_table, "RESULTS", tmp_path)
    monkeypatch.setattr(effects_table, "_dataset_note", lambda eff: "")
    (line,) = [x for x in effects_table.effects_rows("fx") if "gain" in x]
    assert "(A − B) − (C − D)" in line and "+1.0 vs +3.0" in line
    assert "opposite (-2.0 ± 1.0)" in line


def test_every_contrast_names_rows_of_its_group():
    for path in (BENCH / "effects").glob("*.yaml"):
        g = yaml.safe_load(path.read_text())
        names = {r["name"] for r in g["rows"]}
        for c in g.get("contrasts", []):
            assert {*c["a"], *c["b"]} <= names and len(c["a"]) == len(c["b"]) == 2, path
            assert c["direction"] in (1, -1), path
