"""Robustness evaluation: only the protocol's visible side is corrupted; same seed gives
the same metrics; the clean part equals plain `vireid eval`; the CLI, JSON and report."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import run_overrides
from vireid.cli import app
from vireid.data.cache import load_rgb
from vireid.data.records import Modality
from vireid.evaluation.corruption import CorruptionPlan, resize_like_test
from vireid.evaluation.corruption.robustness import evaluate_robustness

runner = CliRunner()


def pixel_featurizer(calls):
    """Features = the (downsampled) pixels the model would see, so a feature changes iff
    its image was corrupted. Records which samples each call corrupted."""

    def featurize(samples, corrupt=None):
        calls.append((corrupt is not None, list(samples)))
        rows = []
        for s in samples:
            img = load_rgb(s.path)
            arr = corrupt(s, img) if corrupt is not None else resize_like_test(img, 48, 32)
            rows.append(arr[::4, ::4].astype(np.float32).ravel())
        f = np.stack(rows)
        return f / np.linalg.norm(f, axis=1, keepdims=True)

    return featurize


@pytest.mark.parametrize(
    "protocol,root_fixture,visible_side",
    [
        ("sysu/all/single", "sysu_root", "gallery"),
        ("sysu/indoor/single", "sysu_root", "gallery"),
        ("regdb/v2t", "regdb_root", "query"),
        ("regdb/t2v", "regdb_root", "gallery"),
        ("llcm/i2v", "llcm_root", "gallery"),
        ("llcm/v2i", "llcm_root", "gallery"),
    ],
)
def test_only_the_protocols_visible_side_is_corrupted(
    protocol, root_fixture, visible_side, request
):
    root = request.getfixturevalue(root_fixture)
    trials = [1] if protocol.startswith("regdb") else [0, 1]
    calls = []
    plan = CorruptionPlan(("gaussian_noise", "fog"), (3, 5), seed=1)
    res = evaluate_robustness(
        protocol, root, trials, pixel_featurizer(calls), plan, 48, 32, sweep=True
    )
    # one clean extraction, then the mix and 2 x 2 sweep cells on visible images only
    assert [c for c, _ in calls] == [False] + [True] * 5
    for corrupted, samples in calls[1:]:
        assert corrupted and all(s.modality is Modality.VISIBLE for s in samples)
    for clean_t, mix_t in zip(res.clean.trials, res.corrupted.trials, strict=True):
        sides = {
            "query": (clean_t.q_feats, mix_t.q_feats),
            "gallery": (clean_t.g_feats, mix_t.g_feats),
        }
        untouched = "query" if visible_side == "gallery" else "gallery"
        assert np.array_equal(*sides[untouched])
        a, b = sides[visible_side]
        assert not np.isclose(a, b).all(axis=1).any()  # every visible image changed
    assert set(res.sweep) == {"gaussian_noise", "fog"} and set(res.sweep["fog"]) == {3, 5}
    assert sum(res.draws["types"].values()) == len(calls[1][1])


@pytest.fixture(scope="module")
def checkpoint(sysu_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("robust") / "run"
    args = ["train", "configs/tests/instant.yaml", *run_overrides(sysu_root, run, run.parent / "c")]
    r = runner.invoke(app, [*args, "train.epochs=1"])
    assert r.exit_code == 0, r.output
    return run / "last.pt"


def _eval(checkpoint, sysu_root, out, *extra):
    args = ["eval", str(checkpoint), "--trials", "2", "--root", str(sysu_root), "--out", str(out)]
    r = runner.invoke(app, [*args, *extra])
    assert r.exit_code == 0, r.output
    return r


def _json(path):
    return json.loads(path.read_text())


def test_cli_clean_equals_plain_eval_and_seeds_reproduce(checkpoint, sysu_root, tmp_path):
    corrupt = ["--corrupt", "gaussian_noise,rain", "--severity", "2,5", "--sweep"]
    _eval(checkpoint, sysu_root, tmp_path / "plain")
    r = _eval(
        checkpoint,
        sysu_root,
        tmp_path / "a",
        *corrupt,
        "--corrupt-seed",
        "1",
        "--report",
        str(tmp_path / "rep"),
    )
    assert "corrupted (random mix)" in r.output and "gaussian_noise" in r.output
    _eval(checkpoint, sysu_root, tmp_path / "b", *corrupt, "--corrupt-seed", "1")
    _eval(checkpoint, sysu_root, tmp_path / "c", *corrupt, "--corrupt-seed", "2")
    plain = _json(tmp_path / "plain" / "results.json")
    a, b, c = (_json(tmp_path / d / "robustness.json") for d in "abc")
    # clean mode is plain `vireid eval`, number for number
    assert _json(tmp_path / "a" / "results.json") == plain
    assert a["clean"]["mean"] == {m: plain["mean"][m] for m in ("R1", "mAP", "mINP")}
    # same seed: identical corrupted metrics; another seed: another corrupted set
    for k in ("corrupted", "sweep", "draws"):
        assert a[k] == b[k]
    assert a["clean"] == c["clean"]
    assert a["corrupted"] != c["corrupted"] and a["sweep"] != c["sweep"]
    assert set(a["sweep"]) == {"gaussian_noise", "rain"} and set(a["sweep"]["rain"]) == {"2", "5"}
    html = (tmp_path / "rep" / "index.html").read_text()
    assert 'id="robust-sweep"' in html and (tmp_path / "rep" / "robustness.png").is_file()
    # mCE of a model against itself is 100 by construction
    _eval(
        checkpoint,
        sysu_root,
        tmp_path / "d",
        *corrupt,
        "--corrupt-seed",
        "1",
        "--mce-reference",
        str(tmp_path / "a" / "robustness.json"),
    )
    mce = _json(tmp_path / "d" / "robustness.json")["mce"]
    assert mce["mAP"]["mCE"] == pytest.approx(100) and mce["R1"]["mCE"] == pytest.approx(100)
    assert mce["reference"] == str(checkpoint)


def test_cli_errors(checkpoint, sysu_root, tmp_path):
    base = ["eval", str(checkpoint), "--trials", "1", "--root", str(sysu_root)]
    cases = [
        (["--corrupt", "hail"], "unknown corruption 'hail'"),
        (["--corrupt", "fog", "--severity", "7"], "severities are 1..5"),
        (["--sweep"], "go with --corrupt"),
        (["--corrupt", "fog", "--mce-reference", str(tmp_path / "x.json")], "needs --sweep"),
        (
            ["--corrupt", "fog", "--sweep", "--mce-reference", str(tmp_path / "x.json")],
            "does not exist",
        ),
    ]
    for extra, message in cases:
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code == 2 and message in r.output.replace("\n", ""), (extra, r.output)
    ref = tmp_path / "ref.json"
    ref.write_text(
        json.dumps(
            {
                "protocol": "sysu/all/single",
                "trials": [0],
                "plan": {"seed": 5},
                "sweep": {"fog": {"1": {}}},
            }
        )
    )
    r = runner.invoke(
        app, [*base, "--corrupt", "fog", "--severity", "1", "--sweep", "--mce-reference", str(ref)]
    )
    assert r.exit_code == 2 and "seed is 5, this run's is 0" in r.output.replace("\n", "")
    r = runner.invoke(
        app,
        [
            "eval",
            "--features",
            str(tmp_path / "f.npz"),
            "--protocol",
            "sysu/all/single",
            "--corrupt",
            "all",
        ],
    )
    assert r.exit_code == 2 and "give a CHECKPOINT" in r.output


def test_list_corruptions():
    r = runner.invoke(app, ["list", "corruptions"])
    assert r.exit_code == 0 and "glass_blur" in r.output and "rain" in r.output
