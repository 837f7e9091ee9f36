"""The gallery index: flat / IVF / HNSW kinds, the persisted file, appending."""

import numpy as np
import pytest
from typer.testing import CliRunner

from vireid.cli import app
from vireid.data.records import Modality, Sample
from vireid.evaluation.features import load_features
from vireid.search import GalleryIndex, IndexSpec

runner = CliRunner()
V, I = Modality.VISIBLE, Modality.INFRARED


def _clustered(n, dim=32, ids=100, seed=0):
    """Features of ``ids`` identities (unit centres + noise), L2-normalised."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    pid = rng.integers(0, ids, n)
    x = centres[pid] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), pid


def _samples(pids, modality, tag="g"):
    return [Sample(f"{tag}{i}.jpg", int(p), 1, modality) for i, p in enumerate(pids)]


def _paths(found):
    return [[m.sample.path for m in row] for row in found]


@pytest.fixture(scope="module")
def data():
    g, gp = _clustered(3000)
    q, _ = _clustered(50, seed=1)
    return g, _samples(gp, V), q


def _recall(index, g, q):
    truth = np.argsort(-(q @ g.T), axis=1)[:, :10]
    found = index.search(q, I, top=10)
    return np.mean([len({m.row for m in r} & set(t)) for r, t in zip(found, truth)]) / 10


@pytest.mark.parametrize(
    "spec,recall",
    [
        (IndexSpec(), 1.0),
        (IndexSpec(kind="ivf", nprobe=16), 0.9),
        (IndexSpec(kind="hnsw", ef_search=64), 0.9),
    ],
    ids=["flat", "ivf", "hnsw"],
)
def test_kinds_recall_against_brute_force(data, spec, recall, tmp_path):
    g, samples, q = data
    index = GalleryIndex(g, samples, spec)
    assert _recall(index, g, q) >= recall
    for qi, row in zip(q, index.search(q, I, top=10), strict=True):
        assert [m.rank for m in row] == list(range(1, len(row) + 1))
        sims = [m.similarity for m in row]
        assert sims == sorted(sims, reverse=True)
        np.testing.assert_allclose(sims, [qi @ g[m.row] for m in row], rtol=1e-5)
        assert all(samples[m.row] is m.sample for m in row)
    if spec.kind == "ivf":  # 4·√N cells but >= 39 vectors each; fewer probes, lower recall
        assert index._index[V].nlist == len(g) // 39
        coarse = GalleryIndex.from_file(index.save(tmp_path / "i.npz"), spec.updated(nprobe=1))
        assert _recall(coarse, g, q) < 0.7


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_file_round_trip_and_append(data, tmp_path, kind):
    g, samples, q = data
    index = GalleryIndex(g[:2000], samples[:2000], IndexSpec(kind=kind), model_id="m1")
    path = index.save(tmp_path / "g.npz")
    stored = load_features(path)  # still a features file (vireid eval --features reads it)
    assert (f"faiss_{V.value}" in stored) == (kind != "flat")
    back = GalleryIndex.from_file(path)
    assert back.spec == index.spec and back.model_id == "m1" and len(back) == 2000
    assert _paths(back.search(q, I)) == _paths(index.search(q, I))  # the stored structure
    np.testing.assert_array_equal(back.feats, g[:2000])
    # append: rows and searches see the new images; the file keeps them
    new = _samples(range(1000), I, "new")
    back.add(g[2000:], new)
    assert back.counts() == {"visible": 2000, "infrared": 1000}
    assert "new5.jpg" in back and back.row_of("new5.jpg") == 2005
    back.save(path)
    again = GalleryIndex.from_file(path)
    assert len(again) == 3000 and again.samples[2999].path == "new999.jpg"
    top = again.search(g[2500], V, top=1)[0][0]  # a visible query finds the infrared image
    assert top.row == 2500 and top.similarity == pytest.approx(1.0, abs=1e-5)
    assert _paths(again.search(q, I)) == _paths(back.search(q, I))


def test_spec_override_keeps_or_rebuilds_the_structure(data, tmp_path):
    g, samples, q = data
    path = GalleryIndex(g, samples, IndexSpec(kind="ivf", nlist=20)).save(tmp_path / "g.npz")
    wide = GalleryIndex.from_file(path, IndexSpec(kind="ivf", nlist=20, nprobe=20))
    assert wide._index[V].nlist == 20 and wide._index[V].nprobe == 20
    truth = np.argsort(-(q @ g.T), axis=1)[:, :10]
    assert [[m.row for m in r] for r in wide.search(q, I)] == truth.tolist()  # all cells: exact
    flat = GalleryIndex.from_file(path, IndexSpec())
    assert isinstance(flat._index[V], type(GalleryIndex(g[:5], samples[:5])._index[V]))
    # a stored index that does not fit the file's rows is refused
    bad = dict(np.load(path))
    bad["faiss_visible"] = (
        GalleryIndex(g[:50], samples[:50], IndexSpec(kind="ivf")).snapshot().blobs[V]
    )
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="stored visible index holds 50 vectors"):
        GalleryIndex.from_file(tmp_path / "bad.npz")


def test_bad_additions_and_options():
    g, pid = _clustered(10)
    index = GalleryIndex(g, _samples(pid, V))
    with pytest.raises(ValueError, match="D=8, the gallery D=32"):
        index.add(g[:, :8], _samples(pid, V))
    nan = g.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        index.add(nan, _samples(pid, V))
    with pytest.raises(ValueError, match="nlist=50 cells for 10 vectors"):
        GalleryIndex(g, _samples(pid, V), IndexSpec(kind="ivf", nlist=50))
    assert len(index) == 10
    with pytest.raises(ValueError, match="index nprobe=0: Input should be greater than"):
        IndexSpec().updated(nprobe=0)
    with pytest.raises(ValueError, match="index kind='lsh'"):
        IndexSpec().updated(kind="lsh")
    assert IndexSpec().updated(kind="hnsw", nprobe=None).kind == "hnsw"


def test_index_cli_kinds_append_and_model_check(checkpoint, gallery_dir, tmp_path):
    out = tmp_path / "g.npz"
    base = ["index", str(checkpoint), "--out", str(out)]
    r = runner.invoke(app, [*base, "--images", str(gallery_dir / "visible"), "--kind", "hnsw"])
    assert r.exit_code == 0, r.output
    assert "indexed 6 images" in r.output and "hnsw index" in r.output
    r = runner.invoke(app, [*base, "--images", str(gallery_dir), "--append"])
    assert r.exit_code == 0, r.output
    assert "appended 18 images (6 already indexed)" in r.output.replace("\n", " ")
    index = GalleryIndex.from_file(out)
    assert index.spec.kind == "hnsw" and index.counts() == {"visible": 12, "infrared": 12}
    r = runner.invoke(app, ["search", str(out), str(checkpoint), str(gallery_dir / "ir")])
    assert r.exit_code == 0, r.output
    # append with other options rebuilds the structure; the rows stay
    r = runner.invoke(app, [*base, "--images", str(gallery_dir), "--append", "--kind", "flat"])
    assert r.exit_code == 0 and GalleryIndex.from_file(out).spec.kind == "flat"
    r = runner.invoke(app, [*base, "--images", str(gallery_dir), "--kind", "ivf", "--nprobe", "0"])
    assert r.exit_code == 2 and "index nprobe=0" in r.output
    r = runner.invoke(app, [*base[:3], str(tmp_path / "none.npz"), "--images", "x", "--append"])
    assert r.exit_code == 2 and "--append" in r.output and "does not exist" in r.output
    other = GalleryIndex.from_file(out)
    other.model_id = "0123456789abcdef"
    other.save(tmp_path / "other.npz")
    r = runner.invoke(
        app,
        [
            "index",
            str(checkpoint),
            "--out",
            str(tmp_path / "other.npz"),
            "--images",
            str(gallery_dir),
            "--append",
        ],
    )
    assert r.exit_code == 2 and "built with other weights" in r.output
