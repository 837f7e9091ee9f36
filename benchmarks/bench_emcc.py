"""EMCC distance (ECUL's joint clustering) at SYSU-MM01 scale next to the modality-balanced
Jaccard it extends (``jaccard_distance(modality=...)``, MMM/PCAL's joint clustering), in
the same run: N = 34,000 clustered features, D = 2048, k1 40 / k2 32 (PCAL's SYSU joint
setting), EMCC k3 80 (= 2·k1) with camera-aware expansion, DBSCAN eps 0.6 / min 4.

Features clustered like SYSU-MM01's training set (bench_mmm_step's generator): 395
identities × 2 appearances (front/back), a third of the images infrared with a modality
shift, visible images from 4 cameras and infrared from 2, each camera adding a small
offset, as in SYSU-MM01's 22,258 + 11,909 images from 4 + 2 cameras. Each measurement runs in a
fresh process; "algorithm memory" is the peak RSS during the call minus the RSS before
it (libraries and features loaded).

    python benchmarks/bench_emcc.py [--n 34000] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb_since_reset, reset_peak_rss, run_child

K1, K2, K3, EPS = 40, 32, 80, 0.6


def data(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    views = rng.normal(size=(395, 2, dim)).astype(np.float32)
    shift = 0.3 * rng.normal(size=(2, dim)).astype(np.float32)
    cam_offset = 0.1 * rng.normal(size=(7, dim)).astype(np.float32)
    is_ir = rng.random(n) < 11909 / (22258 + 11909)
    camera = np.where(is_ir, rng.choice([3, 6], n), rng.choice([1, 2, 4, 5], n))
    pid, view = rng.integers(0, 395, n), rng.integers(0, 2, n)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, 4096):  # no (n, dim) float64 temporaries
        e = min(n, s + 4096)
        x[s:e] = views[pid[s:e], view[s:e]] + shift[is_ir[s:e].astype(int)]
        x[s:e] += cam_offset[camera[s:e]] + 0.8 * rng.normal(size=(e - s, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, is_ir, camera


def child(kind: str, n: int, out: str, dim: int, device: str | None) -> None:
    from vireid.clustering import dbscan, emcc_distance, jaccard_distance

    x, is_ir, camera = data(n, dim)
    base = reset_peak_rss()
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    kw = dict(max_distance=EPS, knn_backend="auto", device=device, timings=stages)
    if kind == "jaccard":
        dist = jaccard_distance(x, K1, K2, modality=is_ir, **kw)
    else:
        dist = emcc_distance(x, K1, K2, K3, modality=is_ir, camera=camera, **kw)
    t1 = time.perf_counter()
    labels = dbscan(dist, EPS)
    stages["dbscan"] = time.perf_counter() - t1
    dt = time.perf_counter() - t0
    peak = peak_rss_mb_since_reset()
    np.save(out, labels)
    print(
        json.dumps(
            {
                "seconds": dt,
                "peak_mb": peak,
                "algo_mb": peak - base,
                "nnz_per_row": dist.nnz / n,
                "clusters": len(set(labels.tolist()) - {-1}),
                "outliers": int((labels < 0).sum()),
                "stages_s": stages,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=34000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--device", default=None, help="torch device of kNN + overlap (cuda)")
    ap.add_argument("--child", nargs=3)
    ap.add_argument("--name", default="emcc", help="results file name")
    a = ap.parse_args()
    dev = [] if a.device is None else ["--device", a.device]
    if a.child:
        child(a.child[0], int(a.child[1]), a.child[2], a.dim, a.device)
        return
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("jaccard", "emcc"):
            out = str(Path(tmp) / f"{kind}.npy")
            runs[kind] = run_child(
                __file__, "--child", kind, str(a.n), out, "--dim", str(a.dim), *dev
            )
    j, e = runs["jaccard"], runs["emcc"]
    emit(
        a.name,
        {
            "n": a.n,
            "dim": a.dim,
            "k1": K1,
            "k2": K2,
            "k3": K3,
            "eps": EPS,
            "device": a.device or "cpu",
            "jaccard_modality": j,
            "emcc": e,
            "time_ratio": e["seconds"] / j["seconds"],
            "memory_ratio": e["algo_mb"] / max(j["algo_mb"], 1e-9),
        },
    )


if __name__ == "__main__":
    main()
