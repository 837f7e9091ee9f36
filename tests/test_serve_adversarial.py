"""The probe's attacks on a real ``vireid serve`` process on loopback: poisoned labels,
no token, a chunked body that never ends, a decompression bomb, sixteen near-limit PNGs
at once (memory), concurrent additions and searches, a second writer; answers are 4xx
where they should be, the memory stays within the decode budget, and the index is
consistent after a restart. The default variant uses 4-megapixel images; the slow one
the probe's 6300² PNGs (40 MP, 32 of them 16 at a time)."""

import io
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import index_images
from serve_proc import ServeProcess
from vireid.cli import app
from vireid.search import GalleryIndex
from vireid.serve.decode import BYTES_PER_PIXEL

httpx = pytest.importorskip("httpx2")
TOKEN = "adversarial-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MB = 2**20


def _png(side: int, color=(90, 120, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), color).save(buf, "PNG")  # a few KB, side² pixels
    return buf.getvalue()


def _endless_chunked_body(port: int, offered: int) -> tuple[int, bytes]:
    """POST /search with ``Transfer-Encoding: chunked`` and a file part that never ends;
    returns the bytes sent before the server answered or hung up, and its answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST /search HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    part = b'--b\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n\r\n'
    s.sendall(head.encode() + b"%x\r\n%s\r\n" % (len(part), part))
    sent, chunk = 0, b"x" * 65536
    try:
        while sent < offered:
            if select.select([s], [], [], 0)[0]:  # the server answered: stop sending
                break
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except OSError:  # it hung up mid-body
        pass
    try:
        answer = s.recv(65536)
    except OSError:
        answer = b""
    s.close()
    return sent, answer


def _attack(checkpoint, gallery_dir, tmp_path, side: int, uploads: int, max_pixels: int):
    index = index_images(checkpoint, tmp_path / "g.npz", gallery_dir)  # 12 visible + 12 ir
    log = tmp_path / "serve.log"
    options = ["--token", TOKEN, "--max-upload-mb", "1", "--max-pixels", str(max_pixels)]
    ir = sorted((gallery_dir / "ir").rglob("*.jpg"))
    acked = set()
    with (
        ServeProcess(index, checkpoint, *options, log=log) as s,
        httpx.Client(base_url=s.url, timeout=300, headers=AUTH) as c,
    ):

        def add(pid: int, data: bytes, **form):
            files = {"images": ("p.jpg", data)}
            r = c.post("/gallery", files=files, data={"modality": "visible", "pid": pid, **form})
            if r.status_code == 200:
                acked.add(pid)
            return r

        def search(data: bytes):
            files = {"image": ("q.png", data)}
            return c.post("/search", files=files, data={"modality": "infrared", "k": "3"})

        # poison and no token: refused, and the service goes on
        assert add(99999999999999999999, ir[0].read_bytes()).status_code == 422
        assert add(1, ir[0].read_bytes(), camera=str(2**64)).status_code == 422
        r = httpx.post(s.url + "/gallery", files={"images": ("p.jpg", ir[0].read_bytes())})
        assert r.status_code == 401
        assert add(1, ir[0].read_bytes()).status_code == 200

        # a chunked body that never ends is cut at the limit (1 MB + 1 MB of form)
        t = time.monotonic()
        sent, answer = _endless_chunked_body(s.port, 100 * MB)
        assert sent < 24 * MB, f"the server read {sent / MB:.0f} MB of a 1 MB-limited upload"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - t < 60

        # a bomb is refused from its header; near-limit PNGs are decoded within the budget
        bomb = _png(int(max_pixels**0.5) + 2)
        r = search(bomb)
        assert r.status_code == 413 and "more than the limit" in r.json()["error"]
        near = _png(int(max_pixels**0.5) - 1)
        search(near)  # warm: first-use allocations are not the load's
        base = s.reset_peak()
        health_s = []

        def probe_health():
            t = time.monotonic()
            assert c.get("/health").status_code == 200
            health_s.append(time.monotonic() - t)

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: search(near).status_code, range(uploads)))
            for _ in range(3):
                probe_health()
        peak = s.peak_mb() - base
        bound = max_pixels * BYTES_PER_PIXEL / MB
        assert codes == [200] * uploads, codes
        assert peak < bound + 100, f"peak {peak:.0f} MB over the base, decode bound {bound:.0f}"
        assert s.rss_mb() - base < 100  # and it goes down again

        # concurrent additions and searches: every addition acknowledged and saved
        jobs = [
            lambda i=i: add(100 + i, ir[i % len(ir)].read_bytes() + b"%03d" % i) for i in range(16)
        ]
        jobs += [lambda: search(ir[0].read_bytes()) for _ in range(16)]
        with ThreadPoolExecutor(8) as pool:
            assert [f.result().status_code for f in [pool.submit(j) for j in jobs]] == [200] * 32

        # a second writer (this process) is refused, naming the service's process
        append = ["index", str(checkpoint), "--out", str(index), "--append", "--images", str(ir[0])]
        r = CliRunner().invoke(app, append)
        assert r.exit_code == 2 and f"is being written by pid {s.pid}" in r.output, r.output
        h = c.get("/health").json()
        assert h["status"] == "ok" and h["images"] == 24 + len(acked)
    # after a restart: the same gallery, every acknowledged addition in it
    with ServeProcess(index, checkpoint, *options) as s:
        assert httpx.get(s.url + "/health").json()["images"] == 24 + len(acked)
    back = GalleryIndex.from_file(index)
    assert {smp.pid for smp in back.samples[24:]} == acked
    return {"peak_mb": peak, "bound_mb": bound, "health_s": max(health_s), "sent_mb": sent / MB}


def test_the_probes_attacks_on_a_live_service(checkpoint, gallery_dir, tmp_path):
    _attack(checkpoint, gallery_dir, tmp_path, side=1999, uploads=16, max_pixels=4_000_000)


@pytest.mark.slow
def test_the_probes_attacks_at_full_size(checkpoint, gallery_dir, tmp_path):
    """The probe's load: 32 × 6300² PNGs (51 KB each, 39.7 MP) 16 at a time took the
    service from 0.88 to 5.08 GB."""
    _attack(checkpoint, gallery_dir, tmp_path, side=6300, uploads=32, max_pixels=40_000_000)
