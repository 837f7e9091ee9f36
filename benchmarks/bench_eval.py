"""Evaluation speed and memory.

1. SYSU-MM01-sized: 3,803 queries × 301 gallery images, 10 trials (gallery re-drawn), our
   vectorised ``evaluate`` vs a straightforward per-query loop (tests/reference_metrics.py),
   same process, same inputs; metrics must agree.
2. Large: N × N (default 50,000) from 256-d features with ``evaluate_features`` (blocked; the
   distance matrix never exists), in a fresh process so its peak RSS is its own.

    python benchmarks/bench_eval.py [--large 50000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from _common import emit, peak_rss_mb, run_child, timed


def sysu_sized(seed: int = 0):
    rng = np.random.default_rng(seed)
    n_ids, dim = 96, 256
    centers = rng.normal(size=(n_ids, dim))
    q_pid = rng.integers(0, n_ids, 3803)
    q_cam = rng.choice([3, 6], 3803)
    q = centers[q_pid] + 4.0 * rng.normal(size=(3803, dim))
    trials = []
    for _ in range(10):
        g_pid = np.repeat(np.arange(n_ids), 4)[:301]
        g_cam = rng.choice([1, 2, 4, 5], 301)
        g = centers[g_pid] + 4.0 * rng.normal(size=(301, dim))
        trials.append((g, g_pid, g_cam))
    norm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return norm(q), q_pid, q_cam, [(norm(g), p, c) for g, p, c in trials]


def bench_sysu() -> dict:
    from reference_metrics import naive_eval
    from vireid.evaluation import evaluate

    q, qp, qc, trials = sysu_sized()
    dists = [(-(q @ g.T), gp, gc) for g, gp, gc in trials]

    def ours():
        return [evaluate(d, qp, gp, qc, gc, "sysu") for d, gp, gc in dists]

    def loop():
        return [naive_eval(d, qp, gp, qc, gc, "sysu") for d, gp, gc in dists]

    t_ours, r_ours = timed(ours, repeat=3)
    t_loop, r_loop = timed(loop, repeat=1)
    agree = all(
        np.array_equal(a.cmc, b[0]) and abs(a.mAP - b[1]) < 1e-12 and abs(a.mINP - b[2]) < 1e-12
        for a, b in zip(r_ours, r_loop, strict=True)
    )
    return {
        "queries": len(q),
        "gallery": 301,
        "trials": 10,
        "ours_s": t_ours,
        "loop_s": t_loop,
        "speedup": t_loop / t_ours,
        "metrics_identical": agree,
        "mAP": float(np.mean([r.mAP for r in r_ours])),
    }


def large_child(n: int) -> None:
    from vireid.evaluation import evaluate_features

    rng = np.random.default_rng(1)
    dim, n_ids = 256, n // 10
    centers = rng.normal(size=(n_ids, dim)).astype(np.float32)
    pid = rng.integers(0, n_ids, n)
    x = centers[pid] + rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    base = peak_rss_mb()
    t, r = timed(
        evaluate_features,
        x,
        x[::-1].copy(),
        pid,
        pid[::-1].copy(),
        np.full(n, 6),
        np.full(n, 1),
        "regdb",
    )
    print(
        json.dumps(
            {
                "n": n,
                "seconds": t,
                "peak_rss_mb": peak_rss_mb(),
                "inputs_rss_mb": base,
                "mAP": r.mAP,
                "dense_dist_would_need_mb": n * n * 8 / 2**20,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large", type=int, default=50000)
    ap.add_argument("--child-large", type=int, default=0)
    a = ap.parse_args()
    if a.child_large:
        large_child(a.child_large)
        return
    payload = {"sysu_sized": bench_sysu()}
    if a.large:
        payload["large"] = run_child(__file__, "--child-large", str(a.large))
    emit("eval", payload)


if __name__ == "__main__":
    main()
