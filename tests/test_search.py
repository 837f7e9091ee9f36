"""Gallery indexing and search: `vireid index` / `vireid search` and the library API."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import write_image
from vireid.cli import app
from vireid.data.datasets.errors import DatasetError
from vireid.data.records import Modality, Sample
from vireid.search import GalleryIndex, collect_images

runner = CliRunner()
V, I = Modality.VISIBLE, Modality.INFRARED


def test_index_protocol_then_eval_features_equals_eval_checkpoint(checkpoint, sysu_root, tmp_path):
    feats = tmp_path / "f.npz"
    common = ["--protocol", "sysu/all/single", "--trials", "2", "--root", str(sysu_root)]
    r = runner.invoke(app, ["index", str(checkpoint), "--out", str(feats), *common])
    assert r.exit_code == 0, r.output
    assert "indexed" in r.output
    r = runner.invoke(
        app, ["eval", "--features", str(feats), *common, "--out", str(tmp_path / "a")]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["eval", str(checkpoint), *common, "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a["mean"] == pytest.approx(b["mean"], abs=1e-9)


def test_collect_images_reads_modality_camera_and_identity(gallery_dir, tmp_path):
    samples = collect_images([gallery_dir])
    by_mod = {m: [s for s in samples if s.modality is m] for m in (V, I)}
    assert len(by_mod[V]) == len(by_mod[I]) == 12
    assert {s.camid for s in by_mod[I]} == {3, 6}
    assert all(s.pid >= 0 for s in samples)
    loose = write_image(tmp_path / "loose" / "x.png")
    with pytest.raises(DatasetError, match=r"x.png: cannot tell its modality"):
        collect_images([loose])
    (s,) = collect_images([loose], "infrared")
    assert s.modality is I and s.pid == -1 and s.camid == 0
    with pytest.raises(FileNotFoundError, match="nope"):
        collect_images([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        collect_images([tmp_path / "empty"])


def test_gallery_index_equals_brute_force_and_filters_modality():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(50, 16)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    samples = [Sample(f"g{i}.jpg", i, 1, V if i % 3 else I) for i in range(50)]
    index = GalleryIndex(g, samples)
    q = g[:2] + 0.1 * rng.normal(size=(2, 16)).astype(np.float32)
    for cross in (True, False):
        found = index.search(q, I, top=5, cross_modality=cross)
        allowed = np.array([(s.modality is V) or not cross for s in samples])
        sims = np.where(allowed, q @ g.T, -np.inf)
        for row, matches in zip(sims, found, strict=True):
            assert [m.sample.path for m in matches] == [f"g{i}.jpg" for i in np.argsort(-row)[:5]]
            assert [m.rank for m in matches] == [1, 2, 3, 4, 5]
            np.testing.assert_allclose(
                [m.similarity for m in matches], np.sort(row)[::-1][:5], 1e-5
            )
    only_vis = GalleryIndex(g[:3], [Sample("a", 1, 1, V)] * 3)
    with pytest.raises(ValueError, match="no infrared images"):
        only_vis.search(q, V)
    with pytest.raises(ValueError, match="D=8"):
        index.search(q[:, :8], I)


def test_search_cli_table_json_report_and_model_check(checkpoint, gallery_dir, tmp_path):
    feats = tmp_path / "g.npz"
    r = runner.invoke(
        app,
        [
            "index",
            str(checkpoint),
            "--images",
            str(gallery_dir / "visible"),
            "--images",
            str(gallery_dir / "rgb"),
            "--out",
            str(feats),
        ],
    )
    assert r.exit_code == 0, r.output
    query = gallery_dir / "ir"
    out = tmp_path / "res.json"
    r = runner.invoke(
        app,
        [
            "search",
            str(feats),
            str(checkpoint),
            str(query),
            "--top",
            "3",
            "--json",
            str(out),
            "--report",
            str(tmp_path / "rep"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert len(res) == 6 and all(len(q["matches"]) == 3 for q in res)
    for q in res:
        assert q["modality"] == "infrared"
        assert {m["modality"] for m in q["matches"]} == {"visible"}  # cross-modality
        sims = [m["similarity"] for m in q["matches"]]
        assert sims == sorted(sims, reverse=True)
    page = (tmp_path / "rep" / "index.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 6 * 4  # each query + its 3 matches
    # captions name identity and camera (base names repeat across identities)
    for q in res:
        for m in q["matches"]:
            assert f"id {m['pid']} · cam{m['camid']}<br>{Path(m['path']).name}" in page
    # the index remembers its weights: another model's index is refused
    from vireid.evaluation.features import load_features, save_features

    d = load_features(feats)
    samples = [
        Sample(str(p), int(i), int(c), Modality.parse(str(m)))
        for p, i, c, m in zip(d["paths"], d["pids"], d["camids"], d["modality"])
    ]
    save_features(tmp_path / "other.npz", d["feats"], samples, model_id="0123456789abcdef")
    r = runner.invoke(app, ["search", str(tmp_path / "other.npz"), str(checkpoint), str(query)])
    assert r.exit_code == 2 and "built with other weights" in r.output
    r = runner.invoke(app, ["index", str(checkpoint), "--out", str(feats)])
    assert r.exit_code == 2 and "exactly one of --images" in r.output


@pytest.mark.parametrize("option", ["--json", "--report"])
def test_search_checks_its_outputs_before_any_work(option, tmp_path):
    """--json naming a folder or --report naming a file is refused at once, naming the
    option (it failed after embedding every query, naming a temporary file)."""
    wrong = tmp_path / "folder"
    wrong.mkdir()
    if option == "--report":
        wrong = tmp_path / "a_file"
        wrong.write_text("x")
    missing = tmp_path / "none"  # index and checkpoint are never opened
    r = runner.invoke(app, ["search", str(missing), str(missing), str(missing), option, str(wrong)])
    assert r.exit_code == 2
    assert f"{option} {wrong}" in r.output and len(r.output.strip().splitlines()) == 1
