"""Clustering at scale: sparse k-reciprocal Jaccard + DBSCAN vs the dense community
formulation (tests/reference_jaccard.py: N × N arrays, per-row loops) on clustered
synthetic features (D = 2048), k1 = 30, k2 = 6, eps = 0.6, min_samples = 4.

Each measurement runs in a fresh process; "algorithm memory" is the peak RSS during the
call minus the RSS just before it (libraries and features loaded; Linux ``clear_refs``).
The dense baseline runs only where its three N × N float32 arrays fit comfortably in this
machine's RAM.

    python benchmarks/bench_cluster.py [--sizes 12000 34000 100000] [--dense-max 12000]

GPU (kNN, pair distances and overlap on CUDA; labels compared with the host path):

    python benchmarks/bench_cluster.py --device cuda --knn-backend auto --host-max 100000 \
        --name cluster_gpu
    python benchmarks/bench_cluster.py --device cuda --knn-backend auto --sizes 1000000 \
        --dense-max 0 --name cluster_gpu_1m_d2048
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
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _common import emit, peak_rss_mb_since_reset, reset_peak_rss, run_child

DIM = 2048


def features(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """n samples of n/20 identities, each identity 2 'views' (like front/back)."""
    rng = np.random.default_rng(seed)
    n_ids = max(2, n // 20)
    centers = rng.normal(size=(n_ids, 2, dim)).astype(np.float32)
    pid = rng.integers(0, n_ids, n)
    view = rng.integers(0, 2, n)
    x = centers[pid, view]
    for s in range(0, n, 65536):  # same stream as one draw, without an (n, dim) float64
        e = min(n, s + 65536)
        x[s:e] += 0.8 * rng.normal(size=(e - s, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def child(kind: str, n: int, out: str, dim: int, backend: str, device: str | None) -> None:
    # libraries first: "algorithm memory" excludes them and the features
    from sklearn.cluster import DBSCAN

    from reference_jaccard import dense_jaccard
    from vireid.clustering import dbscan, jaccard_distance

    x = features(n, dim=dim)
    base = reset_peak_rss()  # current RSS with libraries and features loaded
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    if kind == "sparse":
        dist = jaccard_distance(
            x, 30, 6, max_distance=0.6, knn_backend=backend, device=device, timings=stages
        )
        t1 = time.perf_counter()
        labels = dbscan(dist, 0.6)
        stages["dbscan"] = time.perf_counter() - t1
    else:
        dense = dense_jaccard(x, 30, 6)
        labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(dense)
    dt = time.perf_counter() - t0
    peak = peak_rss_mb_since_reset()
    np.save(out, labels)
    print(
        json.dumps(
            {
                "seconds": dt,
                "peak_mb": peak,
                "algo_mb": peak - base,
                "clusters": len(set(labels.tolist()) - {-1}),
                "outliers": int((labels < 0).sum()),
                "stages_s": stages,
                "gpu_peak_mb": _gpu_peak_mb(),
            }
        )
    )


def _gpu_peak_mb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[12000, 34000, 100000])
    ap.add_argument("--dense-max", type=int, default=12000)
    ap.add_argument("--child", nargs=3)
    ap.add_argument("--dim", type=int, default=DIM)
    ap.add_argument("--knn-backend", default="faiss", help="faiss | torch (CUDA if present)")
    ap.add_argument("--device", default=None, help="torch device of the overlap stage (cuda)")
    ap.add_argument(
        "--host-max",
        type=int,
        default=0,
        help="with --device: also run the host path up to this N and compare labels",
    )
    ap.add_argument("--name", default="cluster", help="results file name")
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.child[2], a.dim, a.knn_backend, a.device)
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.sizes:
            extra = ["--dim", str(a.dim), "--knn-backend", a.knn_backend]
            extra += ["--device", a.device] if a.device else []
            s = run_child(__file__, "--child", "sparse", str(n), f"{tmp}/s{n}.npy", *extra)
            row = {
                "n": n,
                "dim": a.dim,
                "knn_backend": a.knn_backend,
                "sparse_s": s["seconds"],
                "sparse_peak_mb": s["peak_mb"],
                "sparse_algo_mb": s["algo_mb"],
                "device": a.device or "cpu",
                "stages_s": s["stages_s"],
                "gpu_peak_mb": s["gpu_peak_mb"],
                "clusters": s["clusters"],
                "outliers": s["outliers"],
            }
            if a.device and n <= a.host_max:  # the same clustering on the host path
                h = run_child(
                    __file__,
                    "--child",
                    "sparse",
                    str(n),
                    f"{tmp}/h{n}.npy",
                    "--dim",
                    str(a.dim),
                    "--knn-backend",
                    "faiss",
                )
                same = np.array_equal(np.load(f"{tmp}/s{n}.npy"), np.load(f"{tmp}/h{n}.npy"))
                row.update(host_s=h["seconds"], labels_equal_host=bool(same))
            if n <= a.dense_max:
                d = run_child(__file__, "--child", "dense", str(n), f"{tmp}/d{n}.npy", *extra)
                same = np.array_equal(np.load(f"{tmp}/s{n}.npy"), np.load(f"{tmp}/d{n}.npy"))
                row.update(
                    dense_s=d["seconds"],
                    dense_peak_mb=d["peak_mb"],
                    dense_algo_mb=d["algo_mb"],
                    labels_identical=bool(same),
                    speedup=d["seconds"] / s["seconds"],
                    memory_ratio=d["algo_mb"] / max(s["algo_mb"], 1e-9),
                )
            runs.append(row)
            print(json.dumps(row), file=sys.stderr)
    emit(a.name, {"k1": 30, "k2": 6, "eps": 0.6, "runs": runs})


if __name__ == "__main__":
    main()
