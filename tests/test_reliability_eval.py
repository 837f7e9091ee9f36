"""Issue 26, evaluation side: damaged or degenerate input to ``vireid eval`` (features
files, checkpoints, options) fails with one line naming the file, before any work, and a
degenerate model never scores above chance."""

import json
import os
import zipfile

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from reliability_helpers import assert_one_line_error, digest, make_checkpoint, make_features
from vireid.cli import app
from vireid.engine.checkpoint import CheckpointError, load_checkpoint
from vireid.engine.restore import model_from_checkpoint
from vireid.evaluation import evaluate
from vireid.evaluation.features import load_features, save_features

runner = CliRunner()
SYSU = ["--protocol", "sysu/all/single"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "last.pt")


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    return make_features(tmp_path_factory.mktemp("f") / "f.npz")


def _with_arrays(src, dst, **changes):
    data = dict(np.load(src, allow_pickle=False))
    data.update(changes)
    np.savez(dst, **data)
    return dst


def _eval_features(path, *extra):
    return runner.invoke(app, ["eval", "--features", str(path), *SYSU, *extra])


# ----------------------------------------------------------------- features files
@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "empty file"),
        (b"garbage\n", "not a .npz archive"),
        (b"\x80\x04K\x01.", "not a .npz archive"),  # a pickle: numpy would advise allow_pickle
    ],
    ids=["empty", "text", "pickle"],
)
def test_unreadable_features_file_is_one_line(tmp_path, content, needle):
    path = tmp_path / "g.npz"
    path.write_bytes(content)
    assert_one_line_error(_eval_features(path), str(path), needle)


def test_truncated_features_file_is_one_line(feats, tmp_path):
    data = feats.read_bytes()
    for n in (30, len(data) // 2, len(data) - 5):
        path = tmp_path / f"t{n}.npz"
        path.write_bytes(data[:n])
        assert_one_line_error(_eval_features(path), str(path))


def test_object_arrays_are_refused_without_unsafe_advice(feats, tmp_path):
    path = tmp_path / "obj.npz"
    data = dict(np.load(feats, allow_pickle=False))
    data["paths"] = np.array([object()] * len(data["paths"]), dtype=object)
    np.savez(path, **data)
    assert_one_line_error(_eval_features(path), str(path), "pickled")


def test_lying_array_header_is_refused_before_allocating(feats, tmp_path):
    """A member whose header declares a huge shape must not make numpy allocate it."""
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(feats) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            blob = src.read(info)
            if info.filename == "feats.npy":
                blob = blob.replace(b"(36, 8)", b"(9999999999999, 8)", 1)
            dst.writestr(info.filename, blob)
    assert_one_line_error(_eval_features(path), str(path), "declares shape")


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"feats": np.full((36, 8), np.nan)}, "NaN/Inf"),
        ({"feats": np.full((36, 8), 1e39)}, "beyond float32"),
        ({"feats": np.zeros((36, 0))}, "D >= 1"),
        ({"feats": np.zeros((36, 8), complex)}, "expected floats"),
        ({"pids": np.arange(36) + 0.5}, "'pids' has dtype float64"),
        ({"pids": np.full(36, 2**64 - 1, np.uint64)}, "beyond 64-bit"),
        ({"paths": np.arange(36)}, "'paths'"),
        ({"modality": np.array(["ultraviolet"] * 36)}, "unknown modality"),
        ({"split": np.array(["train"] * 36)}, "'split'"),
        ({"camids": np.zeros(35, int)}, "'camids' has 35 entries"),
    ],
    ids=["nan", "overflow", "d0", "complex", "float-pids", "huge-pids", "int-paths",
         "modality", "split", "length"],
)  # fmt: skip
def test_bad_arrays_are_one_line(feats, tmp_path, change, needle):
    path = _with_arrays(feats, tmp_path / "bad.npz", **change)
    assert_one_line_error(_eval_features(path), str(path), needle)


def test_one_non_finite_row_is_refused_naming_it(feats, tmp_path):
    f = np.load(feats)["feats"].copy()
    f[7, 3] = np.inf
    path = _with_arrays(feats, tmp_path / "inf.npz", feats=f)
    with pytest.raises(ValueError, match=r"1 feature row\(s\) hold NaN/Inf .*row 7"):
        load_features(path)


def _chance(qp, gp, rule="regdb"):
    """Mean and spread of (mAP, mINP) in % for a model that knows nothing: the mean over
    300 random rankings; the spread = the std over 100 tie permutations (one permutation
    is shared by all queries, so one evaluation varies more than a mean of rows)."""
    qc, gc = np.full(len(qp), 3), np.ones(len(gp), int)
    rng = np.random.default_rng(1)
    rand = [evaluate(rng.random((len(qp), len(gp))), qp, gp, qc, gc, rule) for _ in range(300)]
    zero = np.zeros((len(qp), len(gp)))
    perms = [np.random.default_rng(s).permutation(len(gp)) for s in range(100)]
    tied = [evaluate(zero[:, p], qp, gp[p], qc, gc[p], rule) for p in perms]
    mean = [100 * np.mean([getattr(r, m) for r in rand]) for m in ("mAP", "mINP")]
    spread = [100 * np.std([getattr(r, m) for r in tied]) for m in ("mAP", "mINP")]
    return mean, spread


def test_constant_features_score_at_chance_through_the_cli(tmp_path):
    """The probe's case end to end: a gallery listed sorted by identity (10 ids x 4
    images), all features equal. The community's tie order scored mAP 23.1 / mINP 29.3
    here; chance is 17.6 / 12.8."""
    path = make_features(tmp_path / "c.npz", n_ids=10, per_side=4)
    data = dict(np.load(path))
    data["feats"] = np.ones_like(data["feats"]) / np.sqrt(8)
    np.savez(path, **data)
    r = runner.invoke(app, ["eval", "--features", str(path), "--protocol", "regdb/v2t"])
    assert r.exit_code == 0, r.output
    got = [float(x) for x in r.output.split("csv: ")[1].split(",")[5:7]]
    q = data["split"] == "query"
    mean, spread = _chance(data["pids"][q], data["pids"][~q])
    for g, m, s in zip(got, mean, spread, strict=True):
        assert abs(g - m) < 3 * s, (got, mean, spread)


# ----------------------------------------------------------------- checkpoints
def test_eval_gallery_npz_as_checkpoint_hints_features(feats):
    r = runner.invoke(app, ["eval", str(feats), *SYSU])
    assert_one_line_error(r, str(feats), "--features")


def test_eval_run_dir_finds_last_pt_or_says_what_it_expected(ckpt, tmp_path):
    assert load_checkpoint(ckpt.parent)["epoch"] == 1  # a run directory → its last.pt
    r = runner.invoke(app, ["eval", str(tmp_path), *SYSU])
    assert_one_line_error(r, str(tmp_path), "without last.pt")


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "empty file"),
        (os.urandom(4096), "not a loadable vireid checkpoint"),
    ],
    ids=["empty", "random"],
)
def test_unreadable_checkpoint_is_one_line(tmp_path, content, needle):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    assert_one_line_error(runner.invoke(app, ["eval", str(path)]), str(path), needle)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_global_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": _Evil(), "epoch": 1, "config": "{}"}, path)
    r = runner.invoke(app, ["eval", str(path)])
    assert_one_line_error(r, str(path), "system", "refused")
    assert "pwned" not in r.output


def _edited(ckpt, dst, **changes):
    state = torch.load(ckpt, weights_only=True)
    state.update(changes)
    torch.save(state, dst)
    return dst


def test_config_not_json_is_one_line(ckpt, tmp_path):
    path = _edited(ckpt, tmp_path / "c.pt", config="{not json")
    assert_one_line_error(runner.invoke(app, ["eval", str(path)]), str(path), "not valid JSON")


def test_non_dict_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(3), path)
    assert_one_line_error(runner.invoke(app, ["eval", str(path)]), str(path), "holds a Tensor")


def test_config_weights_mismatch_is_one_line(ckpt, tmp_path):
    cfg = json.loads(torch.load(ckpt, weights_only=True)["config"])
    cfg["model"]["width"] = 0.25
    path = _edited(ckpt, tmp_path / "m.pt", config=json.dumps(cfg))
    line = assert_one_line_error(runner.invoke(app, ["eval", str(path)]), str(path))
    assert "do not fit its stored config" in line and "model.width=0.25" in line


def test_non_finite_weights_are_refused(ckpt, tmp_path):
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key] = torch.full_like(state["model"][key], float("nan"))
    path = tmp_path / "nan.pt"
    torch.save(state, path)
    line = assert_one_line_error(runner.invoke(app, ["eval", str(path)]), str(path))
    assert "NaN/Inf" in line and key in line
    with pytest.raises(CheckpointError, match="NaN/Inf"):
        model_from_checkpoint(path)


def test_protocol_of_another_dataset_is_named_before_the_trial(ckpt):
    """A SYSU model evaluated with a RegDB protocol (cross-dataset evaluation is allowed,
    tests/test_cross_dataset.py): --trial 11 is out of RegDB's range, and without RegDB's
    root the message asks for it; never 'trained on RegDB trial None'."""
    r = runner.invoke(app, ["eval", str(ckpt), "--protocol", "regdb/v2t", "--trial", "11"])
    line = assert_one_line_error(r, "--trial 11", "1..10")
    assert "None" not in line
    r = runner.invoke(app, ["eval", str(ckpt), "--protocol", "regdb/v2t", "--trial", "2"])
    line = assert_one_line_error(r, "evaluates regdb", "sysu_mm01", "--root regdb=PATH")
    assert "None" not in line


def test_trial_out_of_range_is_refused(feats):
    r = runner.invoke(app, ["eval", "--features", str(feats), "--protocol", "regdb/v2t"])
    assert r.exit_code == 0, r.output  # an explicit split: the features say what to score
    r = runner.invoke(
        app, ["eval", "--features", str(feats), "--protocol", "regdb/v2t", "--trial", "11"]
    )
    assert_one_line_error(r, "--trial 11", "1..10")


@pytest.mark.parametrize("option", ["--out", "--report"])
def test_output_that_is_a_file_is_refused_before_the_work(feats, tmp_path, option):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    r = runner.invoke(app, ["eval", "--features", str(feats), *SYSU, option, str(taken)])
    assert_one_line_error(r, f"{option} {taken} is a file")
    assert taken.read_text() == "mine"


def test_readers_leave_the_files_unchanged(ckpt, feats, tmp_path):
    before = digest(ckpt), digest(feats)
    runner.invoke(app, ["eval", str(ckpt), "--protocol", "regdb/v2t"])
    runner.invoke(app, ["eval", "--features", str(feats), *SYSU])
    assert (digest(ckpt), digest(feats)) == before


def test_export_to_a_directory_is_refused_before_the_work(ckpt, tmp_path):
    out = tmp_path / "w.safetensors"
    out.mkdir()
    r = runner.invoke(app, ["export", str(ckpt), str(out)])
    assert_one_line_error(r, f"OUT {out} is a directory")


def test_saved_features_keep_loading(tmp_path):
    """The checks accept what ``save_features`` writes (float64 input, no split)."""
    from vireid.data.records import Modality, Sample

    s = [Sample(f"/x/{i}.jpg", i, 1, Modality.VISIBLE) for i in range(3)]
    path = save_features(tmp_path / "ok.npz", np.eye(3), s)
    data = load_features(path)
    assert data["feats"].dtype == np.float32 and data["feats"].shape == (3, 3)


def test_weights_that_overflow_to_nan_features_are_one_line(ckpt, sysu_root, tmp_path):
    """Finite weights whose features overflow: refused before ranking, naming an image."""
    state = torch.load(ckpt, weights_only=True)
    state["model"] = {
        k: v * 1e30 if v.is_floating_point() and "weight" in k else v
        for k, v in state["model"].items()
    }
    path = tmp_path / "huge.pt"
    torch.save(state, path)
    r = runner.invoke(app, ["eval", str(path), "--root", str(sysu_root), "--trials", "1"])
    assert_one_line_error(r, "NaN/Inf features", "first: ", alone=False)
