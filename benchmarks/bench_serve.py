"""Load test of ``vireid serve`` on loopback: ``--requests`` (default 1,000) from
``--concurrency`` clients (16), a share ``--add-fraction`` (0.2) of them POST /gallery
additions of new pictures and the rest POST /search, against a real uvicorn process
started by the CLI (with an API token) over a gallery padded to ``--rows`` (100,000);
latency percentiles per kind, failed requests (target 0), the server's peak RSS, and the
index verified after a restart: every acknowledged addition in the file, no other row
changed, the restarted service holding the same count.

Setup, in a temporary folder: a synthetic SYSU-layout set (``write_sysu``), a checkpoint
of ``--config`` trained for two iterations (the weights do not change the cost), ``vireid
index`` of its visible cameras, then random unit features appended under unique fake
paths until the gallery holds ``--rows`` (searching costs N × D either way). Queries are
its infrared images (JPEG bytes), so every search is cross-modality; an addition posts
one of them made unique (bytes appended after the JPEG's end) as infrared with a new
pid. Reference in the same run: decode + embed + search in this process without HTTP,
one query at a time. Client and server share the machine's cores; the machine's load
average before and after is recorded (other work on the machine slows both). Exits
non-zero if any request failed or the index does not verify.

    flock /tmp/vireid-cpu.lock python benchmarks/bench_serve.py
    python benchmarks/bench_serve.py --rows 0 --add-fraction 0 --requests 500 \\
        --name serve_load    # the earlier search-only figure
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _common import emit
from serve_proc import ServeProcess
from vireid.data.synthetic import SynthSpec, write_sysu

ROOT = Path(__file__).parents[1]
TOKEN = "bench-token-" + "0" * 20


def vireid(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "vireid", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pad(index: Path, rows: int) -> int:
    """Append random unit features under fake paths until ``index`` holds ``rows``."""
    from vireid.data.records import Modality, Sample
    from vireid.search import GalleryIndex

    g = GalleryIndex.from_file(index)
    extra = rows - len(g)
    if extra > 0:
        x = np.random.default_rng(0).normal(size=(extra, g.dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        fake = [Sample(f"/bench/pad/{i:07d}.jpg", -1, 1, Modality.VISIBLE) for i in range(extra)]
        g.add(x, fake)
        g.save(index)
    return len(g)


def in_process_ms(index: Path, checkpoint: Path, queries: list[bytes]) -> float:
    """Median ms of decode + embed + search without HTTP (what one search does)."""
    import torch

    from vireid.inference import FeatureExtractor
    from vireid.search import GalleryIndex
    from vireid.serve import decode_upload

    torch.set_num_threads(1)  # as the server runs
    fe, gallery = FeatureExtractor(checkpoint, device="cpu"), GalleryIndex.from_file(index)
    times = []
    for data in queries:
        t = time.perf_counter()
        up = decode_upload(data, "q", 40_000_000, (fe.height, fe.width))
        gallery.search(fe([up.image], "infrared"), "infrared", 10)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def _percentiles(ms: list[float]) -> dict:
    if not ms:
        return {}
    a = np.array(ms)
    return {
        "n": len(a),
        **{f"p{q}": round(float(np.percentile(a, q)), 1) for q in (50, 95, 99)},
        "max": round(float(a.max()), 1),
    }


def load(url: str, queries: list[bytes], args, deadline: float) -> tuple[dict, set[int]]:
    """The mixed load; returns the figures and the pids of acknowledged additions."""
    import httpx2 as httpx

    rng = random.Random(0)
    jobs = ["add" if rng.random() < args.add_fraction else "search" for _ in range(args.requests)]
    acked: set[int] = set()
    limits = httpx.Limits(max_connections=args.concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, timeout=120, limits=limits, headers=headers) as client:

        def one(i: int):
            if time.monotonic() > deadline:
                return jobs[i], None, "deadline"
            picture = queries[i % len(queries)]
            t = time.perf_counter()
            try:
                if jobs[i] == "search":
                    files = {"image": ("q.jpg", picture, "image/jpeg")}
                    r = client.post("/search", files=files, data={"modality": "infrared"})
                    ok = r.status_code == 200 and len(r.json()["results"]) == 10
                else:
                    files = {"images": ("a.jpg", picture + b"vireid-bench-%07d" % i)}
                    form = {"modality": "infrared", "pid": str(10**6 + i)}
                    r = client.post("/gallery", files=files, data=form)
                    ok = r.status_code == 200 and r.json()["added"][0]["new"]
                    if ok:
                        acked.add(10**6 + i)
                ms = (time.perf_counter() - t) * 1000
                return jobs[i], ms, None if ok else f"HTTP {r.status_code}"
            except Exception as e:  # a failed request is a result here, not a crash
                return jobs[i], None, type(e).__name__

        for i in range(5):  # warm-up searches, not counted
            client.post("/search", files={"image": ("q.jpg", queries[i])}, data={"modality": "ir"})
        t = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - t
    errors = [err for _, _, err in results if err is not None]
    figures = {
        "wall_s": round(wall, 2),
        "throughput_rps": round((len(results) - len(errors)) / wall, 2),
        "latency_ms": _percentiles([ms for _, ms, err in results if err is None]),
        "search_ms": _percentiles([ms for k, ms, e in results if k == "search" and e is None]),
        "add_ms": _percentiles([ms for k, ms, e in results if k == "add" and e is None]),
        "failed": len(errors),
        "errors": sorted(set(errors)),
    }
    return figures, acked


def verify(index: Path, before_rows: int, before_head: np.ndarray, acked: set[int]) -> dict:
    """The file after the server stopped: every acknowledged addition, nothing else."""
    from vireid.search import GalleryIndex

    g = GalleryIndex.from_file(index)
    added = [s.pid for s in g.samples[before_rows:]]
    return {
        "rows": len(g),
        "acknowledged_additions": len(acked),
        "all_acknowledged_in_file": acked <= set(added),
        "only_acknowledged_in_file": len(added) == len(acked) and set(added) == acked,
        "earlier_rows_unchanged": bool(np.array_equal(g.feats[: len(before_head)], before_head)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--add-fraction", type=float, default=0.2)
    ap.add_argument("--rows", type=int, default=100_000, help="gallery size (padded)")
    ap.add_argument("--config", default="configs/quickstart/agw_synth.yaml")
    ap.add_argument("--ids", type=int, default=60, help="synthetic identities")
    ap.add_argument("--deadline", type=float, default=1800, help="seconds for the whole load")
    ap.add_argument("--name", default="serve_mixed")
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
    indexed = pad(index, args.rows)
    queries = [p.read_bytes() for p in sorted((data / "cam3").rglob("*.jpg"))]
    from vireid.search import GalleryIndex

    head = GalleryIndex.from_file(index).feats.copy()
    before = sha256(index)
    reference = in_process_ms(index, ckpt, queries[:50])

    load_before = os.getloadavg()
    log = tmp / "serve.log"
    env_token = {"VIREID_TOKEN": TOKEN}
    os.environ.update(env_token)
    with ServeProcess(index, ckpt, log=log) as server:
        import httpx2 as httpx

        rss_start = server.rss_mb()
        res, acked = load(server.url, queries, args, time.monotonic() + args.deadline)
        health = httpx.get(server.url + "/health", timeout=30).json()
        peak_rss, rss_end = server.peak_mb(), server.rss_mb()
    checks = verify(index, indexed, head, acked)
    with ServeProcess(index, ckpt) as server:  # restarted on the saved file
        import httpx2 as httpx

        restarted = httpx.get(server.url + "/health", timeout=30).json()
    checks["restart_images"] = restarted["images"]
    checks["restart_matches_file"] = restarted["images"] == checks["rows"] == health["images"]
    checks["file_unchanged_if_nothing_added"] = bool(acked) or sha256(index) == before
    load_after = os.getloadavg()
    from vireid.config import load_config

    cfg = load_config(args.config)
    payload = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "add_fraction": args.add_fraction,
        "gallery_rows": indexed,
        **res,
        "in_process_ms_per_query": round(reference, 1),
        "server_rss_mb": {
            "start": round(rss_start),
            "peak": round(peak_rss),
            "end": round(rss_end),
        },
        "index_after_restart": checks,
        "load_average_1m": {"before": round(load_before[0], 1), "after": round(load_after[0], 1)},
        "server_threads": 1,  # OMP_NUM_THREADS of the served process (tests/serve_proc.py)
        "model": f"{cfg.model.arch} width {cfg.model.width}, {cfg.data.height}x{cfg.data.width}",
        "dim": int(head.shape[1]),
        "config": args.config,
    }
    ok = res["failed"] == 0 and all(
        v
        for k, v in checks.items()
        if k not in ("rows", "restart_images", "acknowledged_additions")
    )
    payload["ok"] = ok
    emit(args.name, payload)
    shutil.rmtree(tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
