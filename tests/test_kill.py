"""``kill -9`` of a writer in the middle of writing: the index file is the old or the new
one, every addition that was acknowledged is in it, the next writer gets the lock and
removes the killed writer's temporary file. Each kill lands while the temporary file
exists (it is waited for), i.e. during the write. By default two kills of `--append`
and one of the service (a service start costs seconds); the slow variants do eight."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from serve_proc import ROOT, ServeProcess
from vireid.data.records import Modality, Sample
from vireid.search import GalleryIndex
from vireid.search.lock import IndexLock


def _big_index(path: Path, fe, n: int) -> Path:
    """``n`` rows of random features under ``fe``'s model id: an index that takes a
    while to write (paths included)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, fe.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    samples = [
        Sample(
            f"/data/gallery/cam{i % 6}/{i:07d}.jpg",
            i,
            i % 6,
            Modality(("visible", "infrared")[i % 2]),
        )
        for i in range(n)
    ]
    return GalleryIndex(x, samples, model_id=fe.model_id).save(path)


def _leftovers(index: Path) -> list[Path]:
    return list(index.parent.glob(f".{index.name}.*.tmp"))


def _kill_during_write(proc: subprocess.Popen, index: Path, rng: random.Random) -> bool:
    """Wait for the temporary file, then kill after a random delay; whether the kill
    found it still there."""
    deadline = time.monotonic() + 300
    while not _leftovers(index):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.05))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return bool(_leftovers(index))


def _append_kills(fe, checkpoint, gallery_dir, tmp_path, kills: int, n: int):
    index = _big_index(tmp_path / "g.npz", fe, n)
    old = index.read_bytes()
    rng = random.Random(0)
    cmd = [sys.executable, "-m", "vireid", "index", str(checkpoint), "--out", str(index)]
    cmd += ["--append", "--images", str(gallery_dir / "ir"), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    during = []
    for _ in range(kills):
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        during.append(_kill_during_write(proc, index, rng))
        back = GalleryIndex.from_file(index)  # loads: the old file or the new one
        assert len(back) in (n, n + 6)
        if len(back) == n:
            assert index.read_bytes() == old
        else:
            assert back.samples[-1].path.startswith(str(gallery_dir / "ir"))
            index.write_bytes(old)  # the next round appends again
    assert any(during), "no kill landed during a write"
    with IndexLock(index):  # the lock died with its owner; the leftovers go
        assert _leftovers(index) == []


def test_kill_during_append_leaves_the_old_or_the_new_file(fe, checkpoint, gallery_dir, tmp_path):
    _append_kills(fe, checkpoint, gallery_dir, tmp_path, kills=2, n=60_000)


@pytest.mark.slow
def test_kill_during_append_eight_times(fe, checkpoint, gallery_dir, tmp_path):
    _append_kills(fe, checkpoint, gallery_dir, tmp_path, kills=8, n=300_000)


def _service_kills(fe, checkpoint, gallery_dir, tmp_path, kills: int, n: int):
    """Additions stream in from 4 clients; the service is killed while it writes."""
    import httpx2 as httpx

    index = _big_index(tmp_path / "g.npz", fe, n)
    pictures = sorted(gallery_dir.rglob("*.jpg"))
    acked, seq, rng, during = set(), iter(range(10**6)), random.Random(1), []
    for k in range(kills):
        with ServeProcess(index, checkpoint, log=tmp_path / "serve.log") as s:
            stop = threading.Event()

            def client(stop=stop, url=s.url):
                with httpx.Client(base_url=url, timeout=120) as c:
                    while not stop.is_set():
                        i = next(seq)
                        # one picture, made unique by a comment chunk after its end
                        data = pictures[i % len(pictures)].read_bytes() + b"%07d" % i
                        try:
                            r = c.post(
                                "/gallery",
                                files={"images": ("p.jpg", data)},
                                data={"modality": "infrared", "pid": str(i)},
                            )
                        except httpx.TransportError:
                            return
                        if r.status_code == 200:
                            acked.add(i)

            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            while len(acked) < 2 * (k + 1):  # some acknowledged before the kill
                time.sleep(0.05)
            during.append(_kill_during_write(s.proc, index, rng))
            stop.set()
            for t in threads:
                t.join(60)
        back = GalleryIndex.from_file(index)
        pids = {smp.pid for smp in back.samples[n:]}
        assert acked <= pids, f"acknowledged but lost: {sorted(acked - pids)}"
    assert any(during), "no kill landed during a write"
    with ServeProcess(index, checkpoint) as s:  # restarts: lock free, leftovers gone
        import httpx2 as httpx

        assert httpx.get(s.url + "/health").json()["images"] == len(back)
        assert _leftovers(index) == []


def test_kill_during_a_service_save_loses_nothing_acknowledged(
    fe, checkpoint, gallery_dir, tmp_path
):
    _service_kills(fe, checkpoint, gallery_dir, tmp_path, kills=1, n=30_000)


@pytest.mark.slow
def test_kill_during_service_saves_eight_times(fe, checkpoint, gallery_dir, tmp_path):
    _service_kills(fe, checkpoint, gallery_dir, tmp_path, kills=8, n=300_000)
