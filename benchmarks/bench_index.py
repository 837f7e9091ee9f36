"""Gallery index at scale: exact (flat) against approximate (IVF, HNSW) search over
1,000,000 synthetic features — recall@10 against flat, query time, build time, memory,
and the index file's size and save/load time.

Features: ``--ids`` identities whose centres lie in a 64-dimensional subspace of R^D
(re-identification features have a low intrinsic dimension), each image its centre plus
isotropic noise, L2-normalised; the gallery is visible, the queries infrared images of
gallery identities (the service's cross-modality search). Everything goes through
``vireid.search.GalleryIndex``, the code ``vireid serve`` runs. Query time: a batch of
``--queries`` at once (ms per query) and single queries one by one (median ms, as the
service sends them). Recall@10: the share of flat's top 10 that the approximate top 10
holds, over the same queries.

    flock /tmp/vireid-cpu.lock python benchmarks/bench_index.py [--n 1000000 --dim 512]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb
from vireid.data.records import Modality, Sample
from vireid.search import GalleryIndex, IndexSpec
from vireid.search.ann import auto_nlist

BLOCK = 65536


def features(n: int, dim: int, ids: int, pids: np.ndarray, seed: int, shift: float = 0.0):
    """(n, dim) float32 L2-normalised features of identities ``pids`` (see above)."""
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(dim, 64)))[0].T  # (64, dim)
    centres = np.random.default_rng(1).normal(size=(ids, 64)) @ basis
    centres *= np.sqrt(dim) / np.linalg.norm(centres, axis=1, keepdims=True)
    offset = shift * np.random.default_rng(2).normal(size=dim)  # a modality's own bias
    rng = np.random.default_rng(seed)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, BLOCK):  # float64 only one block at a time
        e = min(n, s + BLOCK)
        x[s:e] = centres[pids[s:e]] + offset + 0.8 * rng.normal(size=(e - s, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def recall_at_10(found, truth: np.ndarray) -> float:
    hits = [len({m.row for m in r} & set(t)) for r, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / 10


def timed_queries(index: GalleryIndex, q: np.ndarray, singles: int) -> tuple[list, float, float]:
    """(matches, ms per query in one batch, median ms of single queries)."""
    t = time.perf_counter()
    found = index.search(q, Modality.INFRARED, top=10)
    batch_ms = (time.perf_counter() - t) * 1000 / len(q)
    one = []
    for row in q[:singles]:
        t = time.perf_counter()
        index.search(row, Modality.INFRARED, top=10)
        one.append((time.perf_counter() - t) * 1000)
    return found, batch_ms, float(np.median(one))


def save_timed(index: GalleryIndex, tmp: Path) -> tuple[Path, dict]:
    t = time.perf_counter()
    path = index.save(tmp / f"{index.spec.kind}.npz")
    return path, {
        "file_mb": round(path.stat().st_size / 2**20),
        "save_s": round(time.perf_counter() - t, 1),
    }


def load_timed(path: Path, n: int) -> dict:
    """Load time of a saved index (the caller has dropped its own copy)."""
    t = time.perf_counter()
    back = GalleryIndex.from_file(path)
    load_s = time.perf_counter() - t
    assert len(back) == n
    path.unlink()
    return {"load_s": round(load_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--ids", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=100, help="queries timed one by one")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--kinds", nargs="+", default=["ivf", "hnsw"])
    ap.add_argument("--name", default="index_1m")
    args = ap.parse_args()

    rng = np.random.default_rng(3)
    g_pids = rng.integers(0, args.ids, args.n)
    t = time.perf_counter()
    g = features(args.n, args.dim, args.ids, g_pids, seed=4)
    q = features(args.queries, args.dim, args.ids, g_pids[: args.queries], seed=5, shift=0.3)
    samples = [
        Sample(f"g/{p:06d}/{i:07d}.jpg", int(p), 1, Modality.VISIBLE) for i, p in enumerate(g_pids)
    ]
    gen_s = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="bench_index_"))
    out: dict = {"n": args.n, "dim": args.dim, "ids": args.ids, "queries": args.queries}
    out["generate_s"] = round(gen_s, 1)

    t = time.perf_counter()
    flat = GalleryIndex(g, samples)
    build = time.perf_counter() - t
    found, batch_ms, single_ms = timed_queries(flat, q, args.singles)
    truth = np.array([[m.row for m in r] for r in found])
    out["flat"] = {
        "build_s": round(build, 1),
        "ms_per_query_batch": round(batch_ms, 3),
        "ms_single": round(single_ms, 2),
    }
    path, saved = save_timed(flat, tmp)
    del flat
    out["flat"].update(**saved, **load_timed(path, args.n))
    for kind in args.kinds:
        spec = IndexSpec(kind=kind)
        t = time.perf_counter()
        index = GalleryIndex(g, samples, spec)
        res: dict = {"build_s": round(time.perf_counter() - t, 1), "runs": []}
        if kind == "ivf":
            res["nlist"] = spec.nlist or auto_nlist(args.n)
        else:
            res["hnsw_m"], res["ef_construction"] = spec.hnsw_m, spec.ef_construction
        knobs = args.nprobe if kind == "ivf" else args.ef_search
        for knob in knobs:
            key = "nprobe" if kind == "ivf" else "ef_search"
            index.retune(**{key: knob})
            found, batch_ms, single_ms = timed_queries(index, q, args.singles)
            res["runs"].append(
                {
                    key: knob,
                    "recall_at_10": round(recall_at_10(found, truth), 4),
                    "ms_per_query_batch": round(batch_ms, 3),
                    "ms_single": round(single_ms, 2),
                    "speedup_single_vs_flat": round(out["flat"]["ms_single"] / single_ms, 1),
                }
            )
            print(kind, res["runs"][-1], file=sys.stderr, flush=True)
        path, saved = save_timed(index, tmp)
        del index
        out[kind] = {**res, **saved, **load_timed(path, args.n)}
    tmp.rmdir()
    out["peak_rss_mb"] = round(peak_rss_mb())
    emit(args.name, out)


if __name__ == "__main__":
    main()
