"""Clustering at scale: sparse k-reciprocal Jaccard + DBSCAN on clustered synthetic
features (D = 2048), k1 = 30, k2 = 6, eps = 0.6, min_samples = 4, with exact and
approximate (faiss IVF / HNSW) neighbours, against two references in the same run:

* ``dense``: *our* dense re-implementation of the community formulation
  (tests/reference_jaccard.py: N × N arrays, per-row loops), the tests' oracle;
* ``community``: the community's own ``compute_jaccard_distance``
  (alibaba/cluster-contrast-reid ``clustercontrast/utils/faiss_rerank.py``, faiss CPU
  search = ``search_option=3``) + scikit-learn DBSCAN as its training script calls it: the
  code a user would otherwise run, so the published ratio is against it. It is not
  vendored: pass a checkout with ``--community PATH`` (or ``VIREID_CLUSTER_CONTRAST``);
  without one that reference is skipped and the JSON says so.

Approximate rows report the recall of the first k1 neighbours against the exact lists,
the share of the exact k-reciprocal neighbours found, and the label agreement after
Jaccard + DBSCAN (ARI against the exact labels, outliers, clusters).

Each measurement runs in a fresh process; "algorithm memory" is the peak RSS during the
call minus the RSS just before it (libraries and features loaded; Linux ``clear_refs``).
Every timed row records its wall seconds, the process's CPU seconds (all threads) and the
load average when it started and ended, so a row timed on a shared machine says so.

Features (``--features``): ``isotropic`` (default) = ``features()`` below, identity
centres drawn isotropically in D dimensions (the adversarial case for a projected or
partitioned search); ``agw`` / ``agw_r50`` = a trained network's clustering features of a
synthetic population (``scale_features.py``: ≈ N / 86 unseen identities in SYSU-MM01's
cameras, D = 256 / 2048), cached, so a re-run only clusters. Those rows also report the
ARI of the labels against the identities.

    python benchmarks/scale_features.py --networks agw --images 100000   # once
    python benchmarks/bench_cluster.py --features agw --sizes 100000 \
        --knn exact ivf:pca_dim=64:nprobe=4 --dense-max 0 --name cluster_real_agw

``--labels-dir DIR`` keeps every row's labels and neighbour lists there (default: a
temporary directory); with ``--reuse`` a row (exact or approximate) already in DIR is not
re-run, so a sweep of approximate settings costs only the new rows, and a re-timing on a
quiet machine is the same command into a fresh DIR.

    git clone https://github.com/alibaba/cluster-contrast-reid /tmp/cluster-contrast-reid
    python benchmarks/bench_cluster.py --community /tmp/cluster-contrast-reid \
        [--sizes 12000 34000] [--knn exact hnsw:pca_dim=256 ...] [--dense-max 12000]
    python benchmarks/bench_cluster.py --sizes 100000 --keep   # adds the 100k rows

``--knn`` takes ``exact`` and approximate specs ``method[:field=int ...]`` with the fields
of ``vireid.clustering.knn_approx.Ann`` (e.g. ``hnsw:pca_dim=256:m=16``); every row
records its settings.

GPU (kNN, pair distances and overlap on CUDA; labels compared with the host path):

    python benchmarks/bench_cluster.py --device cuda --knn-backend auto --host-max 100000 \
        --knn exact --name cluster_gpu
    python benchmarks/bench_cluster.py --device cuda --knn-backend auto --sizes 1000000 \
        --knn exact --dense-max 0 --name cluster_gpu_1m_d2048
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from sklearn.metrics import adjusted_rand_score

from _common import emit, peak_rss_mb_since_reset, reset_peak_rss, run_child

DIM = 2048
K1, K2, EPS = 30, 6, 0.6
DENSE_REF = "tests/reference_jaccard.py: our dense re-implementation of the community formulation"
COMMUNITY_FN = "clustercontrast.utils.faiss_rerank.compute_jaccard_distance"


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


def load_features(kind: str, n: int, dim: int = DIM):
    """(features, labels) of ``--features kind`` at size ``n``: labels is None for the
    isotropic model, else the population's (``pid``, ``camid``, ``infrared`` per row)."""
    if kind == "isotropic":
        return features(n, dim=dim), None
    from scale_features import NETWORKS
    from scale_features import features as network_features

    if kind not in NETWORKS:
        raise SystemExit(f"--features {kind}: expected isotropic or one of {sorted(NETWORKS)}")
    x, pop = network_features(kind, n)
    return np.array(x, np.float32), pop  # read into memory (the cache is memory-mapped)


def ann_spec(spec: str):
    """``hnsw:pca_dim=256:m=16`` → ``Ann("hnsw", pca_dim=256, m=16)`` (any Ann field)."""
    from vireid.clustering.knn_approx import Ann

    method, *kv = spec.split(":")
    return Ann(method, **{k: int(v) if v.isdigit() else v for k, v in (x.split("=") for x in kv)})


def file_name(spec: str) -> str:
    return spec.replace(":", "_").replace("=", "")


def community_function(root: str):
    """The community's compute_jaccard_distance, imported from a checkout without running
    the package's __init__ (which pulls in its models and datasets)."""
    import importlib
    import types

    utils = Path(root) / "clustercontrast" / "utils"
    pkg = types.ModuleType("_cc_utils")
    pkg.__path__ = [str(utils)]
    sys.modules["_cc_utils"] = pkg
    return importlib.import_module("_cc_utils.faiss_rerank").compute_jaccard_distance


def child(a: argparse.Namespace) -> None:
    kind, n, out = a.child[0], int(a.child[1]), a.child[2]
    # libraries first: "algorithm memory" excludes them and the features
    import torch
    from sklearn.cluster import DBSCAN

    import vireid.clustering.jaccard as jac
    from reference_jaccard import dense_jaccard
    from vireid.clustering import dbscan, jaccard_distance

    community = community_function(a.community) if kind == "community" else None
    x, _ = load_features(a.features, n, a.dim)
    captured = []  # the neighbour lists of the timed call, for the recall
    search = jac.knn_search
    jac.knn_search = lambda *p, **kw: captured.append(search(*p, **kw)) or captured[-1]
    # every kind but the references is a knn_approx.Ann spec (ivf, hnsw, bf16, ...)
    ann = None if kind in ("exact", "host", "dense", "community") else ann_spec(kind)
    if ann is not None and ann.method == "bf16" and not bf16_runs(a.device, a.knn_backend):
        # knn() would quietly run the exact search (the bug of an earlier 1M "bf16" row)
        raise SystemExit(
            f"{kind}: bf16 candidates run only in the torch search on CUDA "
            f"(--device cuda --knn-backend auto|torch; got {a.device}, {a.knn_backend})"
        )
    base = reset_peak_rss()  # current RSS with libraries and features loaded
    load0 = os.getloadavg()[0]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    if kind == "dense":
        labels = DBSCAN(eps=EPS, min_samples=4, metric="precomputed").fit_predict(
            dense_jaccard(x, K1, K2)
        )
    elif kind == "community":  # as cluster-contrast's train script calls it (CPU search)
        dist = community(torch.from_numpy(x), k1=K1, k2=K2, print_flag=False, search_option=3)
        labels = DBSCAN(eps=EPS, min_samples=4, metric="precomputed", n_jobs=-1).fit_predict(dist)
    else:
        dist = jaccard_distance(
            x, K1, K2, max_distance=EPS, knn_backend=a.knn_backend, ann=ann, device=a.device,
            timings=stages,
        )  # fmt: skip
        t1 = time.perf_counter()
        labels = dbscan(dist, EPS)
        stages["dbscan"] = time.perf_counter() - t1
    dt = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    peak = peak_rss_mb_since_reset()
    np.save(out, labels)
    if captured:
        np.save(out.replace(".npy", "_nn.npy"), captured[0][1])
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    print(
        json.dumps(
            {
                "seconds": dt,
                "cpu_s": cpu,
                "load_avg": [load0, os.getloadavg()[0]],
                "peak_mb": peak,
                "algo_mb": peak - base,
                "clusters": len(set(labels.tolist()) - {-1}),
                "outliers": int((labels < 0).sum()),
                "stages_s": stages,
                "gpu_peak_mb": gpu,
            }
        )
    )


def bf16_runs(device: str | None, knn_backend: str) -> bool:
    """Whether ``jaccard_distance`` runs its kNN as the torch search on CUDA (the only
    place ``Ann("bf16")`` changes anything)."""
    return (device or "").startswith("cuda") and knn_backend in ("auto", "torch")


def identity_ari(labels: np.ndarray, pid: np.ndarray | None) -> dict:
    """ARI of clustering labels against the identities (outliers as one cluster)."""
    if pid is None:
        return {}
    return {"ari_vs_ids": float(adjusted_rand_score(pid, labels))}


def agreement(tmp: str, n: int, kind: str) -> dict:
    """Recall and label agreement of run ``kind`` against the exact run."""
    from vireid.clustering.kreciprocal import _krecip_mask

    f = file_name(kind)
    exact, approx = np.load(f"{tmp}/exact{n}_nn.npy"), np.load(f"{tmp}/{f}{n}_nn.npy")
    found = np.zeros(exact.shape, bool)  # exact neighbour j of row i is in the approx row
    for s in range(0, n, 8192):
        found[s : s + 8192] = (exact[s : s + 8192, :, None] == approx[s : s + 8192, None]).any(2)
    recip = _krecip_mask(exact, K1)  # the exact k-reciprocal neighbours
    le, la = np.load(f"{tmp}/exact{n}.npy"), np.load(f"{tmp}/{f}{n}.npy")
    return {
        "recall_k1": float(found.mean()),
        "recall_reciprocal": float(found[:, : recip.shape[1]][recip].mean()),
        "ari_vs_exact": float(adjusted_rand_score(le, la)),
        "labels_identical": bool(np.array_equal(le, la)),
    }


def community_info(path: str | None) -> dict:
    if not path:
        return {"skipped": "no checkout: pass --community PATH or set VIREID_CLUSTER_CONTRAST"}
    if not (Path(path) / "clustercontrast" / "utils" / "faiss_rerank.py").is_file():
        return {"skipped": f"{path}: no clustercontrast/utils/faiss_rerank.py"}
    rev = subprocess.run(
        ["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return {
        "repository": "alibaba/cluster-contrast-reid",
        "commit": rev.stdout.strip() or None,
        "function": COMMUNITY_FN,
        "call": f"compute_jaccard_distance(feats, k1={K1}, k2={K2}, search_option=3)"
        " (faiss IndexFlatL2 on the CPU) + sklearn DBSCAN(eps=0.6, min_samples=4, "
        "metric='precomputed', n_jobs=-1)",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[12000, 34000, 100000])
    ap.add_argument(
        "--knn",
        nargs="*",
        default=["exact", "hnsw:pca_dim=256", "ivf:pca_dim=256:nprobe=16"],
        help="exact and approximate searches: method[:Ann field=int ...]",
    )
    ap.add_argument("--dense-max", type=int, default=12000)
    ap.add_argument("--community", default=os.environ.get("VIREID_CLUSTER_CONTRAST"))
    ap.add_argument("--community-max", type=int, default=12000, help="N² float32 arrays")
    ap.add_argument("--keep", action="store_true", help="keep the file's rows of other sizes")
    ap.add_argument(
        "--knn-keep",
        action="store_true",
        help="with --keep: also keep the file's approximate rows that this run did not measure",
    )
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
    ap.add_argument("--features", default="isotropic", help="isotropic | agw | agw_r50")
    ap.add_argument("--labels-dir", default=None, help="keep labels here (default: a temp dir)")
    ap.add_argument(
        "--reuse", action="store_true", help="rows already in --labels-dir are not re-run"
    )
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    comm = community_info(a.community)
    if "skipped" in comm:
        print(f"community reference skipped: {comm['skipped']}", file=sys.stderr)
    if "exact" not in a.knn:
        a.knn = ["exact", *a.knn]  # the approximate rows are compared with it
    opts = ["--dim", str(a.dim), "--knn-backend", a.knn_backend, "--features", a.features]
    opts += ["--device", a.device] if a.device else []
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = a.labels_dir or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for n in a.sizes:
            x, pop = load_features(a.features, n, a.dim)  # built and cached before the children
            n_rows, dim = x.shape
            pid = None if pop is None else pop.pid
            del x

            def run(kind: str, extra=opts, n=n, pid=pid) -> dict:
                out = f"{tmp}/{file_name(kind)}{n}.npy"
                done = Path(out.replace(".npy", ".json"))
                if a.reuse and done.is_file() and Path(out).is_file():
                    return json.loads(done.read_text())
                c = ["--community", a.community] if kind == "community" else []
                r = run_child(__file__, "--child", kind, str(n), out, *extra, *c)
                r.update(identity_ari(np.load(out), pid))
                Path(out.replace(".npy", ".json")).write_text(json.dumps(r))
                return r

            s = run("exact")
            row = {
                "n": n,
                "features": a.features,
                "n_features": n_rows,
                "dim": dim,
                "knn_backend": a.knn_backend,
                "sparse_s": s["seconds"],
                "cpu_s": s.get("cpu_s"),
                "load_avg": s.get("load_avg"),
                "ari_vs_ids": s.get("ari_vs_ids"),
                "sparse_peak_mb": s["peak_mb"],
                "sparse_algo_mb": s["algo_mb"],
                "device": a.device or "cpu",
                "stages_s": s["stages_s"],
                "gpu_peak_mb": s["gpu_peak_mb"],
                "clusters": s["clusters"],
                "outliers": s["outliers"],
                "approx": {},
            }
            for kind in a.knn:
                if kind != "exact":
                    r = run(kind)
                    settings = vars(ann_spec(kind))
                    row["approx"][kind] = {**r, **agreement(tmp, n, kind), "settings": settings}
            if a.device and n <= a.host_max:  # the same clustering on the host path
                h = run(
                    "host",
                    ["--dim", str(a.dim), "--knn-backend", "faiss", "--features", a.features],
                )
                same = np.array_equal(np.load(f"{tmp}/exact{n}.npy"), np.load(f"{tmp}/host{n}.npy"))
                row.update(host_s=h["seconds"], labels_equal_host=bool(same))
            if n <= a.dense_max:
                d = run("dense")
                same = np.array_equal(
                    np.load(f"{tmp}/exact{n}.npy"), np.load(f"{tmp}/dense{n}.npy")
                )
                row["dense"] = {"reference": DENSE_REF, **d, "labels_identical": bool(same)}
            if "skipped" not in comm and n <= a.community_max:
                c = run("community")
                le, lc = np.load(f"{tmp}/exact{n}.npy"), np.load(f"{tmp}/community{n}.npy")
                row["community"] = {
                    **c,
                    "labels_identical": bool(np.array_equal(le, lc)),
                    "ari_vs_exact": float(adjusted_rand_score(le, lc)),
                    "speedup_exact": c["seconds"] / s["seconds"],
                    "speedup": {k: c["seconds"] / v["seconds"] for k, v in row["approx"].items()},
                }
            runs.append(row)
            print(json.dumps(row), file=sys.stderr)
    old = Path(__file__).parent / "results" / f"{a.name}.json"
    if a.keep and old.is_file():  # sizes measured in an earlier run (each row is complete)
        runs += [r for r in json.loads(old.read_text())["runs"] if r["n"] not in a.sizes]
        runs.sort(key=lambda r: r["n"])
        if a.knn_keep:  # approximate rows of the measured sizes not re-run this time
            prev = {r["n"]: r for r in json.loads(old.read_text())["runs"]}
            for r in runs:
                for k, v in prev.get(r["n"], {}).get("approx", {}).items():
                    r["approx"].setdefault(k, v)
    emit(
        a.name,
        {
            "k1": K1,
            "k2": K2,
            "eps": EPS,
            "references": {"dense": DENSE_REF, "community": comm},
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
