"""Time of one full MMM pseudo-label step at SYSU-MM01 scale on this machine: visible,
infrared and joint (modality-balanced) clustering, k-means multi-memories, multi-memory cost
and Hungarian matching, plus the single-memory matching diagnostic.

Features: 22,258 visible + 11,909 infrared, D = 2048, ~395 identities × 2 appearances
(front/back) with a modality shift (synthetic, clustered like SYSU-MM01's training set).

The k-means stage is the batched implementation (``vireid.clustering.kmeans``); the
reference in the same run is one scikit-learn ``KMeans`` fit per cluster (what
``cluster_memories`` did before), compared by time and by total inertia (the memories
themselves are one of several equally good local optima when a cluster holds two
appearances and is split into four). With approximate neighbours (``--knn`` as in
bench_cluster.py) the exact clusterings are also run, untimed, for the label agreement.

    python benchmarks/bench_mmm_step.py [--scale 1.0] [--n-init 10] [--name mmm_step]
    python benchmarks/bench_mmm_step.py --knn ivf:pca_dim=256:nprobe=32 --name mmm_step_ivf

``--features agw`` (or ``agw_r50``): a trained network's clustering features of the
synthetic population's first 395 identities (``scale_features.py``; ≈ 34k images, split
by camera into visible and infrared as SYSU-MM01's are) instead of the Gaussian model;
the row then also gives each clustering's ARI against the identities. Each timed stage
records wall and process CPU seconds and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from sklearn.metrics import adjusted_rand_score

from _common import emit, peak_rss_mb_since_reset, reset_peak_rss
from bench_cluster import ann_spec, load_features
from vireid.clustering import (
    centroids,
    cluster_labels,
    pgm_cost,
    progressive_match,
)
from vireid.clustering.kmeans import batched_kmeans
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


def sklearn_memories(feats, labels, n, n_init) -> tuple[float, float]:
    """The per-cluster scikit-learn loop: (seconds, total inertia) over clusters > n."""
    import warnings

    from sklearn.cluster import KMeans

    t0, total = time.perf_counter(), 0.0
    for p in range(int(labels.max()) + 1):
        x = feats[labels == p]
        if len(x) > n:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                total += KMeans(n, n_init=n_init, random_state=0).fit(x).inertia_
    return time.perf_counter() - t0, total


def batched_inertia(feats, labels, n, n_init) -> float:
    groups = [np.flatnonzero(labels == p) for p in range(int(labels.max()) + 1)]
    return float(batched_kmeans(feats, [g for g in groups if len(g) > n], n, n_init)[1].sum())


def joint_labels(fv, fr, ann) -> np.ndarray:
    """MMM's joint (modality-balanced) clustering: k1 = 40, k2 = 32."""
    is_ir = np.r_[np.zeros(len(fv), bool), np.ones(len(fr), bool)]
    return cluster_labels(np.concatenate([fv, fr]), 40, 32, 0.6, 4, modality=is_ir, ann=ann)


def modalities(kind: str, scale: float):
    """(visible feats, infrared feats, visible pids, infrared pids); pids None for the
    Gaussian model."""
    if kind == "gaussian":
        rng = np.random.default_rng(0)
        views = rng.normal(size=(395, 2, DIM)).astype(np.float32)
        nv, nr = int(22258 * scale), int(11909 * scale)
        fv = modality_features(nv, views, 0.3 * rng.normal(size=DIM).astype(np.float32), rng)
        fr = modality_features(nr, views, 0.3 * rng.normal(size=DIM).astype(np.float32), rng)
        return fv, fr, None, None
    x, pop = load_features(kind, round(34167 * scale))  # SYSU-MM01's 395 identities
    ir = pop.infrared
    return x[~ir], x[ir], pop.pid[~ir], pop.pid[ir]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--n-init", type=int, default=10)
    ap.add_argument("--knn", default="exact", help="exact or method[:Ann field=int ...]")
    ap.add_argument("--name", default="mmm_step")
    ap.add_argument("--features", default="gaussian", help="gaussian | agw | agw_r50")
    a = ap.parse_args()
    ann = None if a.knn == "exact" else ann_spec(a.knn)
    fv, fr, pv, pr = modalities(a.features, a.scale)
    nv, nr = len(fv), len(fr)
    base = reset_peak_rss()
    t, cpu = {}, {}
    load = [os.getloadavg()[0]]

    def stage(name, fn, *args, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args, **kw)
        t[f"{name}_s"], cpu[f"{name}_s"] = time.perf_counter() - t0, time.process_time() - c0
        return out

    lv = stage("cluster_visible", cluster_labels, fv, 30, 6, 0.6, 4, ann=ann)
    lr = stage("cluster_infrared", cluster_labels, fr, 30, 6, 0.6, 4, ann=ann)
    joint = stage("cluster_joint", joint_labels, fv, fr, ann)
    (mv, cv), (mr, cr) = stage(
        "kmeans",
        lambda: (cluster_memories(fv, lv, 4, a.n_init), cluster_memories(fr, lr, 4, a.n_init)),
    )
    v2r = stage(
        "cost_and_hungarian",
        lambda: match_clusters(multi_memory_cost(mv, cv, mr, cr, "visible"), "hungarian"),
    )
    stage(
        "single_memory_matching",
        lambda: progressive_match(pgm_cost(centroids(fv, lv), centroids(fr, lr))),
    )
    load.append(os.getloadavg()[0])
    total = sum(t.values())
    peak = peak_rss_mb_since_reset() - base
    ref_v, inertia_v = sklearn_memories(fv, lv, 4, a.n_init)
    ref_r, inertia_r = sklearn_memories(fr, lr, 4, a.n_init)
    ours = batched_inertia(fv, lv, 4, a.n_init) + batched_inertia(fr, lr, 4, a.n_init)
    agree = {}
    if ann is not None:  # the same clusterings with exact neighbours (untimed)
        exact = (cluster_labels(fv, 30, 6, 0.6, 4), cluster_labels(fr, 30, 6, 0.6, 4))
        exact += (joint_labels(fv, fr, None),)
        names = ("visible", "infrared", "joint")
        for key, e, got in zip(names, exact, (lv, lr, joint), strict=True):
            agree[f"ari_vs_exact_{key}"] = float(adjusted_rand_score(e, got))
            agree[f"outliers_{key}"] = [int((got < 0).sum()), int((e < 0).sum())]
            agree[f"clusters_{key}"] = [int(got.max() + 1), int(e.max() + 1)]
    if pv is not None:  # against the identities (outliers as one cluster)
        for key, p, got in (
            ("visible", pv, lv),
            ("infrared", pr, lr),
            ("joint", np.r_[pv, pr], joint),
        ):
            agree[f"ari_vs_ids_{key}"] = float(adjusted_rand_score(p, got))
    emit(
        a.name,
        {
            "features": a.features,
            "visible": nv,
            "infrared": nr,
            "dim": fv.shape[1],
            "kmeans_n_init": a.n_init,
            "knn": a.knn,
            "ann": None if ann is None else vars(ann),
            **t,
            "total_s": total,
            "cpu_s": cpu,
            "total_cpu_s": sum(cpu.values()),
            "load_avg": load,
            "kmeans_reference": "one sklearn KMeans fit per cluster (random_state 0)",
            "kmeans_reference_s": ref_v + ref_r,
            "kmeans_speedup": (ref_v + ref_r) / t["kmeans_s"],
            "kmeans_inertia_ratio": ours / (inertia_v + inertia_r),
            "peak_algo_mb": peak,
            "clusters_visible": int(lv.max() + 1),
            "clusters_infrared": int(lr.max() + 1),
            "clusters_joint": int(joint.max() + 1),
            "matched": int((v2r >= 0).sum()),
            **agree,
        },
    )


if __name__ == "__main__":
    main()
