"""Load test of ``vireid serve`` on loopback: ``--requests`` POST /search (default 500),
``--concurrency`` at a time (16), against a real uvicorn process started by the CLI;
throughput, latency percentiles, zero failed requests, the index file unchanged.

Setup, in a temporary folder: a synthetic SYSU-layout set (``write_sysu``), a checkpoint
of ``--config`` trained for two iterations (the weights do not change the cost), and
``vireid index`` of its visible cameras; the queries are its infrared images (JPEG
bytes), so every search is cross-modality. Reference in the same run: the same work —
decode, embed, search — in this process without HTTP, one query at a time. Client and
server share the machine's cores. The run stops by itself: a fixed number of requests,
each with a timeout, inside an overall deadline; it exits non-zero if any request failed
or the index changed.

    flock /tmp/vireid-cpu.lock python benchmarks/bench_serve.py
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.data.synthetic import SynthSpec, write_sysu

ROOT = Path(__file__).parents[1]


def vireid(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "vireid", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process_ms(index: Path, checkpoint: Path, queries: list[bytes]) -> float:
    """Median ms of decode + embed + search without HTTP (what one request does)."""
    from vireid.inference import FeatureExtractor
    from vireid.search import GalleryIndex
    from vireid.serve import decode_upload

    fe, gallery = FeatureExtractor(checkpoint, device="cpu"), GalleryIndex.from_file(index)
    times = []
    for data in queries:
        t = time.perf_counter()
        up = decode_upload(data, "q", 40_000_000)
        gallery.search(fe([up.image], "infrared"), "infrared", 10)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def load(url: str, queries: list[bytes], n: int, concurrency: int, deadline: float) -> dict:
    import httpx2 as httpx

    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as client:

        def one(i: int):
            if time.monotonic() > deadline:
                return None, "deadline"
            files = {"image": ("q.jpg", queries[i % len(queries)], "image/jpeg")}
            t = time.perf_counter()
            try:
                r = client.post("/search", files=files, data={"modality": "infrared", "k": "10"})
                ok = r.status_code == 200 and len(r.json()["results"]) == 10
                return (time.perf_counter() - t) * 1000, None if ok else f"HTTP {r.status_code}"
            except Exception as e:  # a failed request is a result here, not a crash
                return None, type(e).__name__

        for i in range(5):  # warm-up, not counted
            one(i)
        t = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(one, range(n)))
        wall = time.perf_counter() - t
    lat = np.array([ms for ms, err in results if err is None])
    errors = [err for _, err in results if err is not None]
    return {
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(lat) / wall, 2),
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 1),
            "p95": round(float(np.percentile(lat, 95)), 1),
            "p99": round(float(np.percentile(lat, 99)), 1),
            "max": round(float(lat.max()), 1),
        },
        "failed": len(errors),
        "errors": sorted(set(errors)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--config", default="configs/quickstart/agw_synth.yaml")
    ap.add_argument("--ids", type=int, default=60, help="synthetic identities")
    ap.add_argument("--deadline", type=float, default=900, help="seconds for the whole load")
    ap.add_argument("--name", default="serve_load")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    data, run = tmp / "sysu", tmp / "run"
    write_sysu(data, SynthSpec(ids=args.ids, seed=0))
    over = [f"data.dataset.root={data}", f"output_dir={run}", f"data.cache_dir={tmp / 'c'}"]
    short = ["train.epochs=1", "train.iters_per_epoch=2", "train.warmup_epochs=0"]
    vireid("train", args.config, *over, *short, "eval.trials=1", "eval.report=false")
    ckpt, index = run / "last.pt", tmp / "gallery.npz"
    vis = [x for cam in ("cam1", "cam2", "cam4", "cam5") for x in ("--images", str(data / cam))]
    vireid("index", str(ckpt), *vis, "--modality", "visible", "--out", str(index))
    queries = [p.read_bytes() for p in sorted((data / "cam3").rglob("*.jpg"))]
    before, mtime = sha256(index), index.stat().st_mtime_ns
    reference = in_process_ms(index, ckpt, queries[:50])

    port = free_port()
    cmd = [sys.executable, "-m", "vireid", "serve", str(index), str(ckpt), "--port", str(port)]
    server = subprocess.Popen([*cmd, "--log-level", "warning"], cwd=ROOT, env=os.environ)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx2 as httpx

        up_by = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > up_by:
                raise RuntimeError(f"vireid serve did not come up (exit code {server.poll()})")
            try:
                health = httpx.get(url + "/health", timeout=2).json()
                break
            except httpx.TransportError:
                time.sleep(0.2)
        res = load(url, queries, args.requests, args.concurrency, time.monotonic() + args.deadline)
        after_health = httpx.get(url + "/health", timeout=10).json()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    unchanged = sha256(index) == before and index.stat().st_mtime_ns == mtime
    unchanged = unchanged and after_health["images"] == health["images"]
    from vireid.config import load_config

    cfg = load_config(args.config)
    payload = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        **res,
        "in_process_ms_per_query": round(reference, 1),
        "gallery_images": health["images"],
        "model": f"{cfg.model.arch} width {cfg.model.width}, {cfg.data.height}x{cfg.data.width}",
        "config": args.config,
        "index_unchanged": unchanged,
        "ok": res["failed"] == 0 and unchanged,
    }
    emit(args.name, payload)
    shutil.rmtree(tmp)
    sys.exit(0 if payload["ok"] else 1)


if __name__ == "__main__":
    main()
