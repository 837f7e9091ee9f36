"""The effects table's renderer (benchmarks/effects_table.py): per-group paired results
files replace their group of effects.json, and the verdicts are paired by seed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import effects_table

DATASET = {"ids": 1}


def group(name: str, full: list[float], ablated: list[float], seed_ids=None) -> dict:
    def row(label, runs, **kw):
        r = {
            "name": label,
            "seeds": len(runs),
            "terms": ["ce"],
            "R1": {"mean": sum(runs) / len(runs), "std": 1.0, "runs": runs},
            **kw,
        }
        if seed_ids is not None:
            r["seed_ids"] = seed_ids
        return r

    return {
        "group": name,
        "method": name,
        "rows": [
            row("full", full),
            row("without", ablated, compare_to="full", paper_direction=-1),
        ],
    }


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(effects_table, "RESULTS", tmp_path)
    monkeypatch.setattr(effects_table, "_dataset_note", lambda eff: "")
    return tmp_path


def write(path: Path, seeds, groups) -> None:
    path.write_text(json.dumps({"seeds": seeds, "dataset": DATASET, "groups": groups}))


def test_paired_group_files_replace_their_group(results):
    # the same seed is high or low in both rows: unpaired, the difference is within the
    # spread; paired by seed, every seed loses 1 point
    write(
        results / "effects.json",
        [0, 1, 2],
        [group("a", [10, 20, 30], [9, 19, 29]), group("b", [10, 20, 30], [10, 20, 30])],
    )
    write(
        results / "effects_paired_b.json",
        [0, 1, 2, 3, 4],
        [group("b", [10, 20, 30, 40, 50], [8, 19, 28, 39, 48], seed_ids=[0, 1, 2, 3, 4])],
    )
    rows = effects_table.effects_rows()
    a = next(r for r in rows if r.startswith("| a | without"))
    b = next(r for r in rows if r.startswith("| b | without"))
    assert "reproduced (-1.0 ± 0.0)" in a  # effects.json's rows paired by its seeds
    assert "| 5 |" in b and "reproduced (-1.6 ±" in b  # the paired file's five seeds
    assert rows[-1] == (
        "Results: a: `results/effects.json` (seeds 0 1 2); "
        "b: `results/effects_paired_b.json` (seeds 0 1 2 3 4)."
    )


def test_a_group_only_in_a_paired_file_is_added(results):
    write(results / "effects.json", [0, 1], [group("a", [1, 2], [1, 2])])
    write(results / "effects_paired_c.json", [0, 1], [group("c", [1, 2], [0, 1], [0, 1])])
    rows = effects_table.effects_rows()
    assert rows[2].startswith("| a |") and rows[-3].startswith("| c | without")
