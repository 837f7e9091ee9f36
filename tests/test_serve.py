"""``vireid serve``: the HTTP API through FastAPI's test client and a live uvicorn on
loopback (concurrent additions and searches)."""

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import index_images, live_server
from vireid.cli import app
from vireid.search import GalleryIndex
from vireid.serve import GalleryService, create_app

TestClient = pytest.importorskip("fastapi.testclient").TestClient

runner = CliRunner()
LIMIT_MB = 0.05


@pytest.fixture
def index_file(checkpoint, gallery_dir, tmp_path):
    return index_images(checkpoint, tmp_path / "g.npz", gallery_dir)  # 12 visible + 12 infrared


@pytest.fixture
def service(fe, index_file, tmp_path):
    with GalleryService(index_file, fe, upload_dir=tmp_path / "up") as s:
        yield s


def local(app) -> TestClient:
    """A client of ``app`` that names the service by a loopback name (Host check)."""
    return TestClient(app, base_url="http://localhost")


@pytest.fixture
def client(service):
    return local(create_app(service, max_upload_mb=LIMIT_MB))


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _search(client, data: bytes, modality="infrared", **form):
    files = {"image": ("q.jpg", data, "image/jpeg")}
    return client.post("/search", files=files, data={"modality": modality, **form})


def test_health_search_thumbnails_and_page(client, fe, index_file, gallery_dir):
    h = client.get("/health").json()
    assert h == {
        "status": "ok",
        "images": 24,
        "visible": 12,
        "infrared": 12,
        "dim": fe.dim,
        "index": "flat",
        "model": fe.model_id,
        "read_only": False,
    }
    query = sorted((gallery_dir / "ir").rglob("*.jpg"))[0]
    r = _search(client, query.read_bytes(), k=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {"modality": "infrared", "searched": "visible", "k": 5}
    res = body["results"]
    want = GalleryIndex.from_file(index_file).search(fe(query, "infrared"), "infrared", 5)[0]
    assert [x["row"] for x in res] == [m.row for m in want]
    assert [x["file"] for x in res] == [Path(m.sample.path).name for m in want]
    np.testing.assert_allclose(
        [x["similarity"] for x in res], [m.similarity for m in want], atol=1e-5
    )
    assert {x["modality"] for x in res} == {"visible"}
    assert set(res[0]) == {
        "rank",
        "row",  # the gallery row; "id" would read as the identity, which is "pid"
        "file",
        "similarity",
        "modality",
        "camera",
        "pid",
        "thumbnail",
    }
    # the whole gallery: the query picture itself comes first, with the very features
    # `vireid index` stored for it (the upload is decoded and shrunk as the loader would)
    top = _search(client, query.read_bytes(), k=1, any_modality="true").json()["results"][0]
    row = GalleryIndex.from_file(index_file).row_of(str(query))
    assert top["row"] == row and top["file"] == query.name
    assert top["similarity"] == pytest.approx(1.0, abs=1e-6)
    thumb = client.get(res[0]["thumbnail"])
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).height == 128
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="image"' in page.text and "/search" in page.text


def test_bad_input_gets_a_4xx_json_error_and_the_service_goes_on(client, service, gallery_dir):
    good = sorted((gallery_dir / "ir").rglob("*.jpg"))[0].read_bytes()
    cases = [
        ({"image": ("notes.txt", b"hello", "text/plain")}, {"modality": "ir"}, 400, "not a JPEG"),
        ({"image": ("x.jpg", b"", "image/jpeg")}, {"modality": "ir"}, 400, "upload is empty"),
        ({"image": ("x.jpg", good[: len(good) // 2])}, {"modality": "ir"}, 400, "broken image"),
        ({"image": ("x.jpg", good)}, {"modality": "uv"}, 422, "unknown modality 'uv'"),
        ({"image": ("x.jpg", good)}, {"modality": "ir", "k": "0"}, 422, "k: 0 is out of range"),
        ({"image": ("x.jpg", good)}, {"modality": "ir", "k": "101"}, 422, "expected 1 to 100"),
        ({"image": ("x.jpg", good)}, {"modality": "ir", "k": "abc"}, 422, "valid integer"),
        ({"image": ("x.jpg", good)}, {}, 422, "modality: Field required"),
        ({}, {"modality": "ir"}, 422, "image: Field required"),
        ({"image": ("big.jpg", b"\xff" * 60_000)}, {"modality": "ir"}, 413, "0.05 MB upload"),
        ({"image": ("huge.jpg", b"\xff" * 1_200_000)}, {"modality": "ir"}, 413, "limited to"),
    ]
    for files, data, status, fragment in cases:
        r = client.post("/search", files=files, data=data)
        assert r.status_code == status, (fragment, r.text)
        assert r.headers["content-type"] == "application/json"
        assert fragment in r.json()["error"], r.json()
    r = client.post("/gallery", files={"images": ("a.txt", b"x")}, data={"modality": "visible"})
    assert r.status_code == 400 and "images 'a.txt': not a JPEG" in r.json()["error"]
    assert client.get("/gallery/100000/thumbnail").status_code == 404
    assert client.get("/nowhere").json() == {"error": "Not Found"}
    small = local(create_app(service, max_pixels=1000))
    r = _search(small, good)
    assert r.status_code == 413 and "32×64 pixels" in r.json()["error"]
    # still serving, and nothing was added
    assert _search(client, good).status_code == 200
    assert client.get("/health").json()["images"] == 24


def test_cross_modality_needs_the_other_modality(fe, checkpoint, gallery_dir, tmp_path):
    only_vis = index_images(checkpoint, tmp_path / "v.npz", gallery_dir / "visible")
    client = local(create_app(GalleryService(only_vis, fe, read_only=True)))
    img = sorted((gallery_dir / "visible").rglob("*.jpg"))[0].read_bytes()
    r = _search(client, img, "visible")
    assert r.status_code == 409 and "no infrared images" in r.json()["error"]
    assert _search(client, img, "visible", any_modality="true").status_code == 200
    r = client.post("/gallery", files={"images": ("a.png", _png(0))}, data={"modality": "ir"})
    assert r.status_code == 403 and "read-only" in r.json()["error"]


def test_gallery_additions_are_saved_searchable_and_stored_once(client, fe, index_file, tmp_path):
    files = [("images", ("a.png", _png(1), "image/png")), ("images", ("b.png", _png(2)))]
    r = client.post("/gallery", files=files, data={"modality": "visible", "camera": "7"})
    assert r.status_code == 200, r.text
    added = r.json()["added"]
    assert [(a["row"], a["new"], a["camera"], a["modality"]) for a in added] == [
        (24, True, 7, "visible"),
        (25, True, 7, "visible"),
    ]
    assert r.json()["images"] == 26
    on_disk = GalleryIndex.from_file(index_file)  # saved before the answer
    stored = [on_disk.samples[a["row"]].path for a in added]
    assert len(on_disk) == 26 and [Path(p).name for p in stored] == [a["file"] for a in added]
    assert all(p.startswith(str(tmp_path / "up")) for p in stored)
    np.testing.assert_allclose(on_disk.feats[24:], fe(stored, "visible"), atol=1e-6)
    same = {"modality": "visible", "camera": "7"}
    again = client.post("/gallery", files=files[:1], data=same).json()
    assert again["added"][0]["row"] == 24 and not again["added"][0]["new"] and again["images"] == 26
    # other labels for a stored picture are refused, not silently ignored
    r = client.post("/gallery", files=files[:1], data={**same, "pid": "3"})
    assert (
        r.status_code == 409
        and "already gallery image 24 (visible, camera 7, pid -1)" in (r.json()["error"])
    )
    top = _search(client, _png(1), "visible", k=1, any_modality="true").json()["results"][0]
    assert top["row"] == 24 and top["similarity"] == pytest.approx(1.0, abs=1e-5)


def test_concurrent_additions_and_searches_lose_no_entry(service, index_file, gallery_dir):
    httpx = pytest.importorskip("httpx2")
    query = sorted((gallery_dir / "ir").rglob("*.jpg"))[0].read_bytes()
    with live_server(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as c:

        def add(seed):
            f = {"images": (f"{seed}.png", _png(100 + seed))}
            r = c.post("/gallery", files=f, data={"modality": "infrared", "pid": str(seed)})
            # answered only once the file holds it (whatever other requests wrote since)
            a = r.json()["added"][0]
            assert Path(GalleryIndex.from_file(index_file).samples[a["row"]].path).name == a["file"]
            return r

        def search(_):
            f = {"image": ("q.jpg", query)}
            return c.post("/search", files=f, data={"modality": "infrared", "k": "3"})

        jobs = [(add, i) for i in range(16)] + [(search, i) for i in range(32)]
        jobs = [jobs[i] for i in np.random.default_rng(0).permutation(len(jobs))]
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda job: job[0](job[1]), jobs))
        assert [r.status_code for r in responses] == [200] * len(jobs)
        assert c.get("/health").json()["images"] == 24 + 16
    on_disk = GalleryIndex.from_file(index_file)
    pids = sorted(s.pid for s in on_disk.samples[24:])
    assert len(on_disk) == 40 and pids == list(range(16))
    assert all(r.json()["added"][0]["new"] for r in responses if "added" in r.json())


def test_serve_cli_refuses_an_index_of_other_weights(checkpoint, index_file, tmp_path):
    other = GalleryIndex.from_file(index_file)
    other.model_id = "0123456789abcdef"
    other.save(tmp_path / "other.npz")
    r = runner.invoke(app, ["serve", str(tmp_path / "other.npz"), str(checkpoint)])
    assert r.exit_code == 2 and "built with other weights" in r.output
