"""Input pipeline speed on this machine.

1. Synthetic generation: images/s of ``write_sysu`` (one process).
2. Loader throughput: training batches (P=8 × (4 V + 4 I), AGW transforms at 288×144) with
   and without the decoded-image cache, 0 and 2 workers.

    python benchmarks/bench_data.py [--ids 60] [--batches 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.data.cache import build_cache
from vireid.data.datasets.sysu_mm01 import load_sysu_mm01
from vireid.data.loader import ImageDataset, make_loader
from vireid.data.records import relabel
from vireid.data.samplers import CrossModalitySampler
from vireid.data.synthetic import SynthSpec, write_sysu
from vireid.data.transforms import build_train_transforms

H, W = 288, 144


def loader_rate(splits, images, workers: int, batches: int) -> float:
    mapping = relabel(splits.train)
    labels = [mapping[s.pid] for s in splits.train]
    ds = ImageDataset(splits.train, build_train_transforms(H, W), labels, images)
    sampler = CrossModalitySampler(
        labels, [s.modality for s in splits.train], 8, 4, num_batches=batches, seed=0
    )
    loader = make_loader(ds, batch_sampler=sampler, workers=workers)
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    n, t0 = 0, time.perf_counter()
    for b in it:
        n += len(b["images"])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", type=int, default=60)
    ap.add_argument("--batches", type=int, default=30)
    a = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sysu"
        t0 = time.perf_counter()
        stats = write_sysu(root, SynthSpec(ids=a.ids, height=H, width=W))
        gen = {
            "images": stats["images"],
            "size": f"{H}x{W}",
            "images_per_s": stats["images"] / (time.perf_counter() - t0),
        }
        t0 = time.perf_counter()
        stats128 = write_sysu(Path(tmp) / "small", SynthSpec(ids=a.ids))
        gen_small = {
            "images": stats128["images"],
            "size": "128x64",
            "images_per_s": stats128["images"] / (time.perf_counter() - t0),
        }
        splits = load_sysu_mm01(root)
        t0 = time.perf_counter()
        cache = build_cache([s.path for s in splits.train], H, W, Path(tmp) / "cache")
        build_s = time.perf_counter() - t0
        rows = []
        for workers in (0, 2):
            for cached in (False, True):
                rate = loader_rate(splits, cache if cached else None, workers, a.batches)
                rows.append({"workers": workers, "cache": cached, "images_per_s": rate})
    emit(
        "data",
        {
            "generation": [gen_small, gen],
            "cache_build_s": build_s,
            "train_images": len(splits.train),
            "loader": rows,
        },
    )


if __name__ == "__main__":
    main()
