"""The parity scripts' own logic (benchmarks/parity/): reading the community scripts' logs,
the run-time source patches, the comparison of the two sides. Their code is not needed:
the logs below are written in the format their scripts print (a fact, not their code)."""

import sys
from pathlib import Path

import pytest

PARITY = Path(__file__).parents[1] / "benchmarks" / "parity"
sys.path.insert(0, str(PARITY))
sys.path.insert(0, str(PARITY.parent))

import official_mmm  # noqa: E402
from shims import patched_source  # noqa: E402

import parity  # noqa: E402

FC = (
    "FC:     Rank-1: {:.2f}% | Rank-5: 9.00% | Rank-10: 20.00%| Rank-20: 40.00%| "
    "mAP: {:.2f}%| mINP: {:.2f}%"
)


def _baseline_log(epochs: int) -> str:
    lines = []
    for e in range(epochs):
        lines += [
            f"==> Statistics for IR epoch {e}: {20 + e} clusters",
            f"==> Statistics for RGB epoch {e}: {50 - e} clusters",
            f"Epoch: [{e}][10/20]\tTime 1.0 (1.0)\tData 0.1 (0.1)\tLoss 9.000 (9.500)\t",
            f"Epoch: [{e}][20/20]\tTime 1.0 (1.0)\tData 0.1 (0.1)\tLoss 8.000 ({17 - e:.3f})\t",
            "All Average:",
            FC.format(1.0 + e, 5.0 + e, 3.0),
            "All Average:",
            FC.format(2.0 + e, 6.0 + e, 4.0),
        ]
    return "\n".join(lines) + "\n"


def test_baseline_log_gives_last_results_losses_and_clusterings(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text(_baseline_log(3))
    res = official_mmm.last_results(log)
    assert res["sysu/all/single"] == {"R1": 3.0, "mAP": 7.0, "mINP": 3.0}
    assert res["sysu/indoor/single"] == {"R1": 4.0, "mAP": 8.0, "mINP": 4.0}
    hist = official_mmm.loss_history(log)
    assert hist["loss"] == [17.0, 16.0, 15.0]  # the epoch's running mean on its last line
    assert hist["visible_clusters"] == [50, 49, 48] and hist["infrared_clusters"] == [20, 21, 22]


def test_a_patch_must_match_exactly_once(tmp_path):
    src = tmp_path / "s.py"
    src.write_text("a = crop(288)\nb = crop(288)\n")
    with pytest.raises(SystemExit, match="exactly once, found it 2 times"):
        patched_source(src, {"crop(288)": "crop(h)"})
    assert patched_source(src, {"b = crop(288)": "b = crop(h)"}).endswith("b = crop(h)\n")


def _run(side, seed, r1, vis, ir):
    hist = {"loss": [10.0, 9.0], "visible_clusters": [vis, vis], "infrared_clusters": [ir, ir]}
    return {
        "side": side,
        "seed": seed,
        "sysu/all/single": {"R1": r1, "mAP": r1, "mINP": r1},
        "history": hist,
    }


def test_first_clusterings_compare_seed_by_seed():
    runs = {
        "official": [_run("official", 0, 5.0, 61, 26), _run("official", 1, 6.0, 60, 25)],
        "vireid": [_run("vireid", 0, 5.5, 61, 26), _run("vireid", 1, 6.5, 59, 25)],
    }
    out = parity.first_clusterings(runs)
    assert out["0"] == {"official": [61, 26], "vireid": [61, 26], "equal": True}
    assert out["1"]["equal"] is False


def test_summary_is_the_difference_against_its_standard_error():
    runs = {
        "official": [_run("official", s, v, 1, 1) for s, v in enumerate((4.0, 5.0, 6.0))],
        "vireid": [_run("vireid", s, v, 1, 1) for s, v in enumerate((14.0, 15.0, 16.0))],
    }
    row = parity.summarize("agw", runs)["sysu/all/single"]["R1"]
    assert row["diff"] == pytest.approx(10.0)
    assert row["se"] == pytest.approx((1 / 3 + 1 / 3) ** 0.5)
    assert row["verdict"] != "within spread"
    runs["vireid"] = [_run("vireid", s, v, 1, 1) for s, v in enumerate((4.5, 5.0, 6.5))]
    assert parity.summarize("agw", runs)["sysu/all/single"]["R1"]["verdict"] == "within spread"
