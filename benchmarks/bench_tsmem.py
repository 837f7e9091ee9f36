"""TSMem's memory rows under each reading, on simulated clusters (no training): what a
stage leaves in the memory, by the library's own memories (``TwoStepMemory``,
``GroupedMemory``) fed batches drawn like ``PseudoLabelSampler`` (a random first member,
then other cameras first; K = 16).

Clusters: D 256, 4 cameras × 12 members, member = normalise(identity + camera offset +
noise), mean cosine ≈ 0.5 between members of a cluster, ≈ 0.7 inside one camera. Every
memory starts at the (per-row) centroids and takes 30 batch updates per cluster at
momentum 0.1. Statistics per reading, mean ± std over clusters:

* ``cos_last_member``: the row against the closest member of the last batch (of its
  camera for camera rows): ≈ 1 means the row *is* about one batch member;
* ``cos_centroid``: the row (or the mean of a cluster's rows) against the centroid;
* ``fit``: the members' cosine to the nearest row of their cluster (what the loss pulls
  them to); ``camera_gap``: the best minus the worst camera's mean fit, i.e. how
  unevenly the proxies represent the cluster's cameras;
* ``step_cos``: a row against itself one update earlier (how much it hops);
* what the loss reads (τ 0.05, the memory's ``scores``): ``read_cos``, τ·ℓ of a member's
  own cluster (its cosine to the row for one row; a soft nearest row less τ·log n_c, or
  the mean cosine to the rows, for camera rows); ``read_margin``, τ·ℓ of the own
  cluster minus the highest other cluster's (every cluster has the same rows, so the
  row count cancels); ``own_row_share``, the share of the positive's pull that goes to
  the member's own camera row (1 for one row).

``fit`` and ``camera_gap`` score the nearest row and so favour more rows by
construction; the read statistics score what the loss reads.

    python benchmarks/bench_tsmem.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.losses.grouped_memory import GroupedMemory

D, C, CAMS, PER_CAM, K, STEPS, M = 256, 50, 4, 12, 16, 30, 0.1
TAU = 0.05
READINGS = {  # name: (rule, camera rows, momentum, read of the camera rows)
    "sequential, one row (Cluster-Contrast; without TSMem)": ("sequential", False, M, None),
    "random member, one row (previous stage 1)": ("random", False, M, None),
    "random member replaces the row (momentum 0)": ("random", False, 0.0, None),
    "batch mean, one row (stage 2)": ("mean", False, M, None),
    "random member, camera rows (stage 1)": ("random", True, M, "log_mean_exp"),
    "random member, camera rows, mean read": ("random", True, M, "mean"),
}


def clusters(rng: np.random.Generator):
    ident = rng.normal(size=(C, 1, D))
    cam = rng.normal(size=(C, CAMS, D)) * 0.85
    x = ident[:, :, None] + cam[:, :, None] + rng.normal(size=(C, CAMS, PER_CAM, D)) * 0.95
    x = x.reshape(C, CAMS * PER_CAM, D)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    camid = np.repeat(np.arange(CAMS), PER_CAM)
    return x.astype(np.float32), camid


def batch(rng: np.random.Generator, camid: np.ndarray) -> np.ndarray:
    first = rng.integers(len(camid))
    others = np.delete(np.arange(len(camid)), first)
    other = rng.permutation(others[camid[others] != camid[first]])
    same = rng.permutation(others[camid[others] == camid[first]])
    return np.r_[first, other, same][:K]


def read_stats(mem: GroupedMemory, feats: np.ndarray, labels: np.ndarray, cams: np.ndarray):
    """``read_cos``, ``read_margin`` and ``own_row_share`` per member (module docstring)."""
    with torch.no_grad():
        score = mem.scores(torch.from_numpy(feats)).numpy() * TAU  # (N, C)
        sim = feats @ mem.features.numpy().T / TAU  # (N, R)
    n = np.arange(len(feats))
    own = score[n, labels]
    other = score.copy()
    other[n, labels] = -np.inf
    share = np.ones(len(feats))
    rc, table = mem.row_cluster.numpy(), np.asarray(mem.table)
    if mem.table.shape[1] > 1:
        for i in n:  # the in-cluster weights of ℓ's gradient over the cluster's rows
            rows = np.flatnonzero(rc == labels[i])
            w = np.exp(sim[i, rows] - sim[i, rows].max())
            w = w / w.sum() if mem.read != "mean" else np.full(len(rows), 1 / len(rows))
            share[i] = w[rows == table[labels[i], cams[i]]][0]
    return {"read_cos": own, "read_margin": own - other.max(1), "own_row_share": share}


def run(x, camid, rule, camera_rows, momentum, read, rng):
    n = C * CAMS * PER_CAM
    feats = x.reshape(n, D)
    labels = np.repeat(np.arange(C), CAMS * PER_CAM)
    cams = np.tile(camid, C)
    groups = cams if camera_rows else np.zeros(n, np.int64)
    mem = GroupedMemory.from_features(
        feats, labels, groups, TAU, momentum, compose="set", read=read or "log_mean_exp"
    )
    gen = torch.Generator().manual_seed(0)
    step_cos, last = [], {}
    for _ in range(STEPS):
        before = mem.features.clone()
        picks = [batch(rng, camid) for _ in range(C)]
        idx = np.concatenate([c * CAMS * PER_CAM + p for c, p in enumerate(picks)])
        mem.update_groups(
            torch.from_numpy(feats[idx]),
            torch.from_numpy(labels[idx]),
            torch.from_numpy(groups[idx]),
            rule,
            gen,
        )
        step_cos.append(float((before * mem.features).sum(1).mean()))
        last = {c: p for c, p in enumerate(picks)}
    rows = mem.features.numpy()
    rc, rg = mem.row_cluster.numpy(), np.asarray(mem.table)
    stats = {k: [] for k in ("cos_last_member", "cos_centroid", "fit", "camera_gap")}
    for c in range(C):
        members = x[c]
        own = rows[rc == c]
        for r in np.flatnonzero(rc == c):
            g = int(np.flatnonzero(rg[c] == r)[0])
            seen = last[c] if not camera_rows else last[c][camid[last[c]] == g]
            if len(seen):
                stats["cos_last_member"].append(float((members[seen] @ rows[r]).max()))
        centroid = members.mean(0) / np.linalg.norm(members.mean(0))
        proxy = own.mean(0) / np.linalg.norm(own.mean(0))
        stats["cos_centroid"].append(float(proxy @ centroid))
        fit = (members @ own.T).max(1)
        per_cam = [fit[camid == g].mean() for g in range(CAMS)]
        stats["fit"].append(float(fit.mean()))
        stats["camera_gap"].append(float(max(per_cam) - min(per_cam)))
    out = {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in stats.items()}
    out["step_cos"] = {"mean": float(np.mean(step_cos[1:])), "std": float(np.std(step_cos[1:]))}
    for k, v in read_stats(mem, feats, labels, cams).items():
        out[k] = {"mean": float(v.mean()), "std": float(v.std())}
    out["rows_per_cluster"] = len(rows) / C
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    x, camid = clusters(rng)
    pair = np.einsum("cid,cjd->cij", x, x)
    off = ~np.eye(len(camid), dtype=bool)
    same_cam = (camid[:, None] == camid[None, :]) & off
    data = {
        "member_cos": float(pair[:, off].mean()),
        "member_cos_same_camera": float(pair[:, same_cam].mean()),
    }
    results = {}
    for name, (rule, cam_rows, momentum, read) in READINGS.items():
        torch.manual_seed(0)
        results[name] = run(x, camid, rule, cam_rows, momentum, read, np.random.default_rng(1))
        r = results[name]
        print(
            f"{name:58s} last {r['cos_last_member']['mean']:.3f}  centroid "
            f"{r['cos_centroid']['mean']:.3f}  fit {r['fit']['mean']:.3f}  gap "
            f"{r['camera_gap']['mean']:.3f}  step {r['step_cos']['mean']:.3f}  read "
            f"{r['read_cos']['mean']:.3f}  margin {r['read_margin']['mean']:.3f}  own "
            f"{r['own_row_share']['mean']:.3f}",
            file=sys.stderr,
        )
    emit(
        "tsmem",
        {
            "setup": {"D": D, "clusters": C, "cameras": CAMS, "per_camera": PER_CAM, "K": K},
            "steps": STEPS,
            "data": data,
            "readings": results,
        },
    )


if __name__ == "__main__":
    main()
