"""The service is safe to expose: values checked before anything is kept, memory and
file consistent when a save fails, access controls (Host, Origin, token, read-only)
before any body is read, decoding within budgets, no server path in any answer; and
Hypothesis over the form fields (any value: a 4xx or a 200, never a 500, the file
changed only by an acknowledged addition)."""

import errno
import hashlib
import io
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import index_images
from vireid.search import GalleryIndex
from vireid.search.index import IndexFile
from vireid.serve import Decoder, GalleryService, create_app, decode_upload
from vireid.serve import decode as decode_mod

TestClient = pytest.importorskip("fastapi.testclient").TestClient
TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def base_index(checkpoint, sysu_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("gal")
    for cam, mod in ((1, "visible"), (3, "ir")):
        for f in sorted((sysu_root / f"cam{cam}").rglob("*.jpg"))[:4]:
            (root / mod / f.parent.name).mkdir(parents=True, exist_ok=True)
            (root / mod / f.parent.name / f.name).write_bytes(f.read_bytes())
    return index_images(checkpoint, root / "g.npz", root), root


@pytest.fixture
def index_file(base_index, tmp_path):
    path = tmp_path / "g.npz"
    path.write_bytes(base_index[0].read_bytes())
    return path


@pytest.fixture
def service(fe, index_file, tmp_path):
    with GalleryService(index_file, fe, upload_dir=tmp_path / "up") as s:
        yield s


def client_of(service, base="http://localhost", **options) -> TestClient:
    return TestClient(create_app(service, **options), base_url=base)


def _png(seed: int, size=(32, 64)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _add(client, seed=1, headers=None, **form):
    files = {"images": (f"{seed}.png", _png(seed), "image/png")}
    return client.post(
        "/gallery", files=files, data={"modality": "infrared", **form}, headers=headers or {}
    )


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_out_of_range_labels_are_refused_before_anything_is_kept(service, index_file, tmp_path):
    """The probe's poison: pid=99999999999999999999 was kept in memory, failed every
    later save, and all additions since vanished at restart."""
    client = client_of(service)
    before = _sha(index_file)
    for form, fragment in [
        ({"pid": "99999999999999999999"}, "pid: 99999999999999999999 is out of range"),
        ({"camera": str(2**64)}, f"camera: {2**64} is out of range"),
        ({"camera": "-1"}, "camera: -1 is out of range"),
        ({"pid": "-2"}, "expected -1 (unknown) to"),
        ({"pid": "1e3"}, "pid: Input should be a valid integer"),
        ({"camera": "nan"}, "camera: Input should be a valid integer"),
    ]:
        r = _add(client, **form)
        assert r.status_code == 422 and fragment in r.json()["error"], (form, r.text)
    assert _sha(index_file) == before and not (tmp_path / "up").exists()
    ok = _add(client, 2, pid=str(2**63 - 1), camera="5")  # the largest storable values
    assert ok.status_code == 200, ok.text
    assert client.get("/health").json()["status"] == "ok"
    back = GalleryIndex.from_file(index_file)
    assert len(back) == 9 and back.samples[8].pid == 2**63 - 1


def test_a_failed_save_undoes_the_addition_and_health_says_degraded(
    service, index_file, monkeypatch, tmp_path
):
    client = client_of(service)
    before, real_save = _sha(index_file), IndexFile.save

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(IndexFile, "save", full)
    r = _add(client, 3)
    assert r.status_code == 507, r.text
    assert "could not be saved (No space left on device)" in r.json()["error"]
    h = client.get("/health").json()
    assert h["status"] == "degraded" and h["images"] == 8 and "No space left" in h["error"]
    assert _sha(index_file) == before and len(service.gallery) == 8
    assert list((tmp_path / "up").iterdir()) == []  # the refused upload's file is not kept
    # the same picture again once the disk has room: added, saved, healthy
    monkeypatch.setattr(IndexFile, "save", real_save)
    r = _add(client, 3)
    assert r.status_code == 200 and r.json()["added"][0]["new"], r.text
    assert client.get("/health").json()["status"] == "ok"
    assert len(GalleryIndex.from_file(index_file)) == 9


def test_a_refused_addition_removes_only_the_upload_files_nothing_else_uses(service, monkeypatch):
    """A refused request of a picture already in the gallery and a new one: the new one's
    file goes, the indexed one's stays (its thumbnail still answers)."""
    client = client_of(service)
    kept = _add(client, 5)
    assert kept.status_code == 200, kept.text
    row = kept.json()["added"][0]["row"]

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(IndexFile, "save", full)
    files = [("images", (f"{i}.png", _png(i), "image/png")) for i in (5, 6)]
    r = client.post("/gallery", files=files, data={"modality": "infrared"})
    assert r.status_code == 507, r.text
    assert [p.name for p in service.upload_dir.iterdir()] == [kept.json()["added"][0]["file"]]
    assert client.get(f"/gallery/{row}/thumbnail").status_code == 200


def test_concurrent_additions_around_a_failed_save_are_saved_or_refused(
    service, index_file, monkeypatch
):
    """Requests that share a failed group commit are all refused; every 200 is in the
    file and in memory, every refusal in neither."""
    real_save, calls = IndexFile.save, []

    def flaky(self, path):
        calls.append(len(self.samples))
        time.sleep(0.05)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real_save(self, path)

    monkeypatch.setattr(IndexFile, "save", flaky)
    client = client_of(service)
    results = [None] * 12
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, _add(client, 100 + i)))
        for i in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert set(codes) == {200, 503}, codes
    on_disk = GalleryIndex.from_file(index_file)
    names = {s.path.rsplit("/", 1)[-1] for s in on_disk.samples}
    for r in results:
        if r.status_code == 200:
            assert r.json()["added"][0]["file"] in names
    assert len(on_disk) == len(service.gallery) == 8 + codes.count(200)
    np.testing.assert_array_equal(on_disk.feats, service.gallery.feats)
    # the upload folder holds the saved additions' files and no refused one's
    assert sorted(p.name for p in service.upload_dir.iterdir()) == sorted(
        s.path.rsplit("/", 1)[-1] for s in on_disk.samples[8:]
    )


def test_token_host_origin_and_read_only_act_before_the_body(service, fe, index_file):
    client = client_of(service, token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    r = _add(client)
    assert r.status_code == 401 and "no API token" in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = _add(client, headers={"Authorization": "Bearer wrong-token-0123456789"})
    assert r.status_code == 401 and "a wrong API token" in r.json()["error"]
    assert _add(client, headers=bearer).status_code == 200
    assert client.get("/health").status_code == 200  # reads stay open without --token-reads
    reads = client_of(service, token=TOKEN, token_reads=True)
    assert reads.get("/health").status_code == 401
    assert reads.get("/gallery/0/thumbnail").status_code == 401
    assert reads.get("/").status_code == 200  # the page holds no data
    assert reads.get("/health", headers=bearer).json()["images"] == 9
    # DNS rebinding: the service reached under a foreign name
    r = client.get("/health", headers={"Host": "evil.example:8000"})
    assert r.status_code == 400 and "evil.example:8000" in r.json()["error"]
    # a page of another origin cannot add, even with a simple multipart form
    r = _add(client, 5, headers={**bearer, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "refused (--cors-origin)" in r.json()["error"]
    assert "access-control-allow-origin" not in r.headers
    # the page served by the service itself is same-origin
    assert _add(client, 6, headers={**bearer, "Origin": "http://localhost"}).status_code == 200
    # an allowed origin gets CORS headers and preflight answers
    cors = client_of(service, cors_origins=["https://app.example"])
    pre = cors.options(
        "/search",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    r = cors.get("/health", headers={"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["x-content-type-options"] == "nosniff"
    # /docs only when asked
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404
    assert client_of(service, docs=True).get("/docs").status_code == 200
    with pytest.raises(ValueError, match="at least 16 characters"):
        create_app(service, token="short")


def test_read_only_refuses_before_decoding(fe, index_file, monkeypatch):
    with GalleryService(index_file, fe, read_only=True) as ro:
        client, decoded = client_of(ro), []
        monkeypatch.setattr(Image, "open", lambda *a, **k: decoded.append(a))
        r = _add(client)
    assert r.status_code == 403 and "read-only" in r.json()["error"] and decoded == []


def test_streamed_bodies_are_cut_at_the_limit(service):
    """Chunked (no Content-Length): counted as it arrives and refused at the limit; the
    app stops pulling the body there (the probe's 1 GB was read whole before the 413)."""
    import asyncio

    app = create_app(service, max_upload_mb=0.05)
    pulled, sent = 0, []

    head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n\r\n'

    async def receive():  # one file part that never ends: 200 × 64 KB = 12.8 MB offered
        nonlocal pulled
        pulled += 1
        body = head if pulled == 1 else b"x" * 65536
        return {"type": "http.request", "body": body, "more_body": pulled < 200}

    async def send(message):
        sent.append(message)

    headers = [(b"host", b"localhost"), (b"content-type", b"multipart/form-data; boundary=b")]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/search",
        "raw_path": b"/search",
        "query_string": b"",
        "headers": [*headers, (b"transfer-encoding", b"chunked")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and b"over the limit" in sent[1]["body"]
    # pulled up to the limit (the upload's 0.05 MB + 1 MB of form) and one chunk past it
    assert (pulled - 1) * 65536 <= int(0.05 * 2**20) + 2**20 + 65536 and pulled < 200
    client = client_of(service, max_upload_mb=0.05)
    declared = client.post("/search", content=b"x" * (2 * 2**20))
    assert declared.status_code == 413 and "limited to 1.05 MB" in declared.json()["error"]
    with pytest.raises(ValueError, match="--max-upload-mb inf"):
        create_app(service, max_upload_mb=float("inf"))


def test_no_answer_shows_a_server_path(service, tmp_path, monkeypatch):
    client = client_of(service)
    answers = [
        _add(client, 7),
        client.post(
            "/search",
            files={"image": ("q.png", _png(7))},
            data={"modality": "infrared", "any_modality": "true"},
        ),
        client.get("/health"),
        client.get("/gallery/999/thumbnail"),
    ]
    service.gallery.samples[0] = replace(service.gallery.samples[0], path=str(tmp_path / "gone"))
    answers.append(client.get("/gallery/0/thumbnail"))
    monkeypatch.setattr(
        GalleryService, "search", lambda *a: (_ for _ in ()).throw(RuntimeError(str(tmp_path)))
    )
    crashing = TestClient(create_app(service), "http://localhost", raise_server_exceptions=False)
    answers.append(
        crashing.post("/search", files={"image": ("q.png", _png(7))}, data={"modality": "ir"})
    )
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 404, 500]
    for a in answers:
        assert str(tmp_path) not in a.text and "/tmp" not in a.text, a.text
    assert answers[1].json()["results"][0]["file"].endswith(".png")


def test_thumbnails_decode_only_safe_formats_within_limits(service, tmp_path):
    client = client_of(service)
    eps = tmp_path / "x.eps"
    Image.new("RGB", (8, 8)).save(eps, "EPS")
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 5000)).save(huge)  # 25 MP
    samples = service.gallery.samples
    samples[0] = replace(samples[0], path=str(eps))
    samples[1] = replace(samples[1], path=str(huge))
    samples[2] = replace(samples[2], path="/dev/zero")
    small = client_of(service, max_pixels=1_000_000)
    assert [small.get(f"/gallery/{i}/thumbnail").status_code for i in range(4)] == [
        404,
        404,
        404,
        200,
    ]
    assert client.get("/gallery/1/thumbnail").status_code == 200  # within the default limit


def test_uploads_are_embedded_exactly_as_the_index_embeds_files(fe, base_index, tmp_path):
    """Shrinking at decode time changes nothing: the features equal the file's."""
    files = sorted(base_index[1].rglob("*.jpg"))[:2]
    big = tmp_path / "big.png"
    Image.open(files[0]).resize((517, 1031)).save(big)
    for path in [*files, big]:
        up = decode_upload(path.read_bytes(), "x", 10**8, (fe.height, fe.width))
        assert up.image.shape == (fe.height, fe.width, 3)
        np.testing.assert_array_equal(fe([up.image], "visible"), fe(path, "visible"))


def test_decodes_stay_within_their_budgets(monkeypatch):
    """At most ``max_decodes`` at once and at most ``pixel_budget`` declared pixels in
    flight, whatever the number of threads; a request that cannot get a turn in time
    gets 503."""
    state = {"running": 0, "pixels": 0, "max_running": 0, "max_pixels": 0}
    lock = threading.Lock()

    def slow_decode(data, name, max_pixels, size):
        px = Image.open(io.BytesIO(data)).size
        px = px[0] * px[1]
        with lock:
            state["running"] += 1
            state["pixels"] += px
            state["max_running"] = max(state["max_running"], state["running"])
            state["max_pixels"] = max(state["max_pixels"], state["pixels"])
        time.sleep(0.02)
        with lock:
            state["running"] -= 1
            state["pixels"] -= px
        return None

    monkeypatch.setattr(decode_mod, "decode_upload", slow_decode)
    decoder = Decoder((8, 4), max_pixels=100_000, max_decodes=3, pixel_budget=150_000)
    images = [_png(i, (300, 300)) for i in range(4)] + [_png(i, (100, 100)) for i in range(12)]
    threads = [threading.Thread(target=decoder, args=(d, "x")) for d in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["max_running"] <= 3 and state["max_pixels"] <= 150_000
    assert state["max_running"] >= 2  # small images do share the budget
    busy = Decoder((8, 4), max_pixels=100_000, max_decodes=1, wait_s=0.1)
    with busy._turn(1, "held"), pytest.raises(decode_mod.ServiceError, match="busy") as e:
        busy(_png(0), "image 'q.png'")
    assert e.value.status == 503


FIELDS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "nan", "inf", "-0", "1e3", "0x10", " 3", "visible", "IR", "true"]),
    st.text(max_size=12),
)
IMAGES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([_png(1), _png(2)[:150], b"GIF89a" + bytes(40), b"%!PS-Adobe-3.0 EPSF-3.0"]),
)


FUZZ = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


def _fuzz_one(service, index_file, route, image, modality, k, camera, pid, any_modality):
    client = client_of(service)
    before, n = _sha(index_file), len(service.gallery)
    if route == "/search":
        files = {"image": ("f.png", image)}
        form = {"modality": modality, "k": k, "any_modality": any_modality}
    else:
        files = {"images": ("f.png", image)}
        form = {"modality": modality, "camera": camera, "pid": pid}
    r = client.post(route, files=files, data=form)
    assert r.status_code == 200 or 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/json"
    if r.status_code != 200:
        assert "\n" not in r.json()["error"]
    added = route == "/gallery" and r.status_code == 200 and r.json()["added"][0]["new"]
    assert (_sha(index_file) != before) == added
    assert len(service.gallery) == n + added == len(GalleryIndex.from_file(index_file))
    assert client.get("/health").json()["status"] == "ok"


@settings(max_examples=40, **FUZZ)
@example("/gallery", _png(1), "infrared", "1", "0", "99999999999999999999", "false")
@example("/gallery", _png(1), "infrared", "1", str(2**64), "-1", "false")
@example("/search", _png(1), "infrared", str(2**70), "0", "-1", "true")
@given(
    route=st.sampled_from(["/search", "/gallery"]),
    image=IMAGES,
    modality=FIELDS,
    k=FIELDS,
    camera=FIELDS,
    pid=FIELDS,
    any_modality=FIELDS,
)
def test_fuzzed_form_fields_get_a_4xx_or_a_200(
    service, index_file, route, image, modality, k, camera, pid, any_modality
):
    _fuzz_one(service, index_file, route, image, modality, k, camera, pid, any_modality)


@pytest.mark.slow
@settings(max_examples=1000, **FUZZ)
@given(
    route=st.sampled_from(["/search", "/gallery"]),
    image=IMAGES,
    modality=FIELDS,
    k=FIELDS,
    camera=FIELDS,
    pid=FIELDS,
    any_modality=FIELDS,
)
def test_fuzzed_form_fields_many(
    service, index_file, route, image, modality, k, camera, pid, any_modality
):
    _fuzz_one(service, index_file, route, image, modality, k, camera, pid, any_modality)
