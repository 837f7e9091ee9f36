"""Time of one full MMM pseudo-label step at SYSU-MM01 scale on this machine: visible,
infrared and joint (modality-balanced) clustering, k-means multi-memories, multi-memory cost
and Hungarian matching, plus the single-memory matching diagnostic.

Features: 22,258 visible + 11,909 infrared, D = 2048, ~395 identities × 2 appearances
(front/back) with a modality shift (synthetic, clustered like SYSU-MM01's training set).

    python benchmarks/bench_mmm_step.py [--scale 1.0] [--n-init 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb_since_reset, reset_peak_rss
from vireid.clustering import (
    centroids,
    cluster_labels,
    pgm_cost,
    progressive_match,
)
from vireid.clustering.multi_memory import (
    cluster_memories,
    match_clusters,
    multi_memory_cost,
)

DIM = 2048


def modality_features(n: int, views: np.ndarray, shift: np.ndarray, rng) -> np.ndarray:
    pid = rng.integers(0, len(views), n)
    view = rng.integers(0, 2, n)
    x = views[pid, view] + shift + 0.8 * rng.normal(size=(n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--n-init", type=int, default=10)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    views = rng.normal(size=(395, 2, DIM)).astype(np.float32)
    nv, nr = int(22258 * a.scale), int(11909 * a.scale)
    fv = modality_features(nv, views, 0.3 * rng.normal(size=DIM).astype(np.float32), rng)
    fr = modality_features(nr, views, 0.3 * rng.normal(size=DIM).astype(np.float32), rng)
    base = reset_peak_rss()
    t = {}
    t0 = time.perf_counter()
    lv = cluster_labels(fv, 30, 6, 0.6, 4)
    t["cluster_visible_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lr = cluster_labels(fr, 30, 6, 0.6, 4)
    t["cluster_infrared_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    joint = cluster_labels(
        np.concatenate([fv, fr]),
        40,
        32,
        0.6,
        4,
        modality=np.r_[np.zeros(nv, bool), np.ones(nr, bool)],
    )
    t["cluster_joint_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mv, cv = cluster_memories(fv, lv, 4, a.n_init)
    mr, cr = cluster_memories(fr, lr, 4, a.n_init)
    t["kmeans_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    v2r = match_clusters(multi_memory_cost(mv, cv, mr, cr, "visible"), "hungarian")
    t["cost_and_hungarian_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    progressive_match(pgm_cost(centroids(fv, lv), centroids(fr, lr)))
    t["single_memory_matching_s"] = time.perf_counter() - t0
    total = sum(t.values())
    emit(
        "mmm_step",
        {
            "visible": nv,
            "infrared": nr,
            "dim": DIM,
            "kmeans_n_init": a.n_init,
            **t,
            "total_s": total,
            "peak_algo_mb": peak_rss_mb_since_reset() - base,
            "clusters_visible": int(lv.max() + 1),
            "clusters_infrared": int(lr.max() + 1),
            "clusters_joint": int(joint.max() + 1),
            "matched": int((v2r >= 0).sum()),
        },
    )


if __name__ == "__main__":
    main()
