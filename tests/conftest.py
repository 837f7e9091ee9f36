"""Shared fixtures: tiny datasets written to disk in the official layouts."""

from __future__ import annotations

import random
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vireid.data.synthetic import SynthSpec, write_regdb, write_sysu

sys.path.insert(0, str(Path(__file__).parent))  # reference_metrics helpers

TINY = SynthSpec(ids=16, seed=3, height=64, width=32, min_images=3, max_images=5, gallery_images=10)


@pytest.fixture(scope="session")
def sysu_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "SYSU-MM01 cam copy"  # "cam" in the root name
    write_sysu(root, TINY)
    return root


@pytest.fixture(scope="session")
def regdb_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "RegDB"
    write_regdb(root, SynthSpec(ids=12, seed=5, height=64, width=32), per_id=4)
    return root


@pytest.fixture
def sysu_copy(sysu_root, tmp_path) -> Path:
    """A private copy that a test may damage."""
    dst = tmp_path / "sysu"
    shutil.copytree(sysu_root, dst)
    return dst


def write_image(path: Path, seed: int = 0, size=(32, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="session")
def llcm_root(tmp_path_factory) -> Path:
    """A tiny LLCM tree in DEEN's layout (no NIR cam3), root name containing 'cam'."""
    root = tmp_path_factory.mktemp("data") / "LLCM_camera"
    rng = random.Random(0)
    test_ids = [3, 5, 8]
    train_ids = [1, 2]
    k = 0
    for pid in test_ids:
        for cam in (1, 2, 3, 4):
            for sub in ("test_vis", "test_nir"):
                if sub == "test_nir" and cam == 3:
                    continue
                if rng.random() < 0.8 or cam == 1:
                    for f in range(rng.randint(1, 3)):
                        k += 1
                        write_image(root / sub / f"cam{cam}" / f"{pid:04d}" / f"{f:04d}.jpg", k)
    idx = root / "idx"
    idx.mkdir(parents=True)
    (idx / "test_id.txt").write_text(",".join(map(str, test_ids)))
    for name, sub in (("train_vis.txt", "vis"), ("train_nir.txt", "nir")):
        lines = []
        for label, pid in enumerate(train_ids):
            for cam in (1, 2):
                rel = f"{sub}/cam{cam}/{pid:04d}/0001.jpg"
                k += 1
                write_image(root / rel, k)
                lines.append(f"{rel} {label}")
        (idx / name).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(1)
    yield


def run_overrides(root, out, cache) -> list[str]:
    """The config overrides every test training run needs: data, run and cache folders."""
    return [f"data.dataset.root={root}", f"output_dir={out}", f"data.cache_dir={cache}"]


@pytest.fixture(scope="session")
def checkpoint(sysu_root, tmp_path_factory) -> Path:
    """A tiny trained model (configs/tests/instant.yaml, one epoch) for inference tests."""
    from typer.testing import CliRunner

    from vireid.cli import app

    run = tmp_path_factory.mktemp("instant") / "run"
    args = ["train", "configs/tests/instant.yaml", *run_overrides(sysu_root, run, run.parent / "c")]
    r = CliRunner().invoke(app, [*args, "train.epochs=1"])
    assert r.exit_code == 0, r.output
    return run / "last.pt"


@pytest.fixture(scope="session")
def fe(checkpoint):
    """The ``FeatureExtractor`` of ``checkpoint`` on the CPU."""
    from vireid.inference import FeatureExtractor

    return FeatureExtractor(checkpoint, device="cpu")


def index_images(checkpoint, out: Path, *images) -> Path:
    """``vireid index CHECKPOINT --images …  --out OUT`` (modality from the folder names)."""
    from typer.testing import CliRunner

    from vireid.cli import app

    args = ["index", str(checkpoint), "--out", str(out)]
    for p in images:
        args += ["--images", str(p)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def gallery_dir(sysu_root, tmp_path) -> Path:
    """A user's folder: SYSU images re-filed under visible/ and infrared/ names."""
    out = tmp_path / "gallery"
    for cam, mod in ((1, "visible"), (2, "rgb"), (3, "ir"), (6, "thermal")):
        for f in sorted((sysu_root / f"cam{cam}").rglob("*.jpg"))[:6]:
            dst = out / mod / f"cam{cam}" / f.parent.name / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
    return out


def straight_and_resumed(recipe, root, tmp_path, epochs: int, stop: int, *overrides):
    """Train ``epochs`` straight, and ``stop`` epochs then resume to ``epochs``; the
    checkpoints (straight, after the stop, resumed) as loaded dicts."""
    from vireid.config import load_config
    from vireid.engine.checkpoint import load_checkpoint
    from vireid.engine.run import train

    def cfg(out, n):
        over = run_overrides(root, out, tmp_path / "c")
        return load_config(recipe, [*over, f"train.epochs={n}", *overrides])

    train(cfg(tmp_path / "straight", epochs))
    train(cfg(tmp_path / "resumed", stop))
    mid = load_checkpoint(tmp_path / "resumed" / "last.pt")
    train(cfg(tmp_path / "resumed", epochs), resume="auto")
    return (
        load_checkpoint(tmp_path / "straight" / "last.pt"),
        mid,
        load_checkpoint(tmp_path / "resumed" / "last.pt"),
    )


def chromium() -> str:
    """The Chromium binary for the browser tests (skips the test without one)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium on this machine (apt-get install chromium)")


@contextmanager
def live_server(app):
    """``app`` served by a real uvicorn on a free loopback port in a thread; yields its URL."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def pytest_configure(config):
    """One torch thread from the start: module- and session-scoped fixtures (a reference
    training run) are set up before the per-test ``_torch_threads``, and a run whose sums
    are split over another thread count rounds differently (exact-resume comparisons).
    Then apply the mechanism mutant named by ``$VIREID_MUTANT`` (see tests/mutants) before
    collection, so that names imported by the test modules are the mutated ones."""
    torch.set_num_threads(1)
    from mutants import apply_from_env

    apply_from_env()
