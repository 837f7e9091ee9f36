"""The exact k1-NN self-join of clustering on one GPU (the torch backend), by stage and
variant, on the clustering benchmark's features (bench_cluster.features, D = 2048):

* ``fp32``: the exact search as ``knn(x, k, device="cuda")`` runs it (float32 tile
  products, one ``torch.topk`` per tile);
* ``bf16``: ``cluster.knn: bf16`` (bf16 tile products, 2·k candidates re-ranked in fp32);
* per tile: the float32 and bf16 products and the top-k and top-2k selections, timed on
  a few (1024 × N) tiles.

Lists are compared: the bf16 rows against the fp32 rows, and the fp32 rows against one
``torch.topk`` per row on ``--check-rows`` rows (the selection's reference).

    python benchmarks/bench_knn_gpu.py --sizes 1000000    # writes results/knn_gpu.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from bench_cluster import K1, features
from vireid.clustering import knn
from vireid.clustering.knn_approx import Ann

BLOCK = 1024  # knn()'s default query block


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t


def tile_stages(x: torch.Tensor, tiles: int = 8) -> dict:
    """Seconds per (BLOCK × N) tile of the product (fp32, bf16) and of the selections."""
    from vireid.clustering.knn import _bf16_products

    sq = (x * x).sum(1)
    low = x.to(torch.bfloat16)
    acc = {"product_fp32": 0.0, "product_bf16": 0.0, "topk_k": 0.0, "topk_2k": 0.0}
    for t in range(tiles):
        q = slice(t * BLOCK, (t + 1) * BLOCK)
        d, s = timed(lambda q=q: (sq[q, None] + sq[None] - 2 * x[q] @ x.T).clamp_min_(0))
        acc["product_fp32"] += s
        _, s = timed(lambda q=q: _bf16_products(low[q], low))
        acc["product_bf16"] += s
        _, s = timed(lambda d=d: torch.topk(d, K1, dim=1, largest=False, sorted=True))
        acc["topk_k"] += s
        _, s = timed(lambda d=d: torch.topk(d, 2 * K1, dim=1, largest=False, sorted=False))
        acc["topk_2k"] += s
    return {k: v / tiles for k, v in acc.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000000])
    ap.add_argument("--check-rows", type=int, default=4096)
    ap.add_argument(
        "--device", default="cuda", help="cpu: a smoke test of the script (bf16 = exact there)"
    )
    ap.add_argument("--name", default="knn_gpu")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_knn_gpu: no CUDA device (--device cpu for a smoke test)")
    runs = []
    for n in a.sizes:
        x = torch.from_numpy(features(n)).to(a.device)
        stages = tile_stages(x)
        (d32, i32), t32 = timed(lambda x=x: knn(x, K1, backend="torch", device=a.device))
        (d16, i16), t16 = timed(
            lambda x=x: knn(x, K1, backend="torch", device=a.device, ann=Ann("bf16"))
        )
        # the fp32 rows against one top-k per row of the same tiles (sets: ties may differ)
        sq = (x * x).sum(1)
        same = []
        for s in range(0, min(n, a.check_rows), BLOCK):
            q = slice(s, min(n, s + BLOCK))
            d = (sq[q, None] + sq[None] - 2 * x[q] @ x.T).clamp_min_(0)
            ref = torch.topk(d, K1, dim=1, largest=False).indices.cpu()
            same += [set(r.tolist()) == set(t.tolist()) for r, t in zip(ref, i32[q], strict=True)]
        tiles = -(-n // BLOCK)
        row = {
            "n": n,
            "dim": x.shape[1],
            "k": K1,
            "fp32_s": t32,
            "bf16_s": t16,
            "per_tile_s": stages,
            "tiles": tiles,
            "bf16_rows_identical": float((i16 == i32).all(1).mean()),
            "bf16_max_abs_d2_diff": float(np.abs(d16 - d32).max()),
            "fp32_rows_equal_topk_reference": float(np.mean(same)),
            "checked_rows": len(same),
            "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if a.device != "cpu" else None,
        }
        runs.append(row)
        print(row, file=sys.stderr)
        del x
        if a.device != "cpu":
            torch.cuda.empty_cache()
    emit(a.name, {"runs": runs})


if __name__ == "__main__":
    main()
