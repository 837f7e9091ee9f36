"""Where the training input pipeline spends its time, per image, in CPU seconds of one
core: what a GPU step at ≥ 3,000 images/s would ask of the host's loader workers.

Stages, on synthetic SYSU-layout JPEGs at 288×144 (the AGW/CAJ recipes' input):

* ``decode``: ``load_rgb`` (Pillow JPEG decode of a 288×144 file), what a worker does
  per image without the decoded-image cache (``data.cache: false``);
* ``cache_read``: one row of the decoded cache (a memory-mapped uint8 array) copied out;
* ``transform_<recipe>``: the training transforms of one image (torchvision v2 on a uint8
  array: pad 10, random crop, flip, float + normalise; ``caj`` adds channel random
  erasing, the channel-exchanged second visible view and the infrared adaptive grey);
* ``collate``: stacking a 64-image batch, per image.

CPU seconds (``time.thread_time``) are the measure, so the numbers hold on a loaded
machine (wall-clock seconds and the load average are recorded beside them). The row
``workers_for_3000`` is the number of loader processes whose CPU seconds reach 3,000
images/s at this cost — the host side of the GPU throughput target. The device side (the
step at a fixed batch, fp32 / AMP / channels_last) is ``bench_train.py --device cuda``;
the host→device copy is not measured yet (no GPU in the sessions since).

    python benchmarks/bench_input.py [--images 640] [--name input_stages]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.data.cache import build_cache, load_rgb
from vireid.data.datasets.sysu_mm01 import load_sysu_mm01
from vireid.data.loader import collate_views
from vireid.data.synthetic import SynthSpec, write_sysu
from vireid.data.transforms import build_train_transforms

H, W = 288, 144
TARGET = 3000  # images/s: the GPU throughput target
RECIPES = {
    "agw": {},
    "caj": {"channel_erasing": 0.5, "channel_exchange": True, "adaptive_gray": 0.5},
}


def per_image(fn, items) -> dict:
    """CPU and wall seconds per item of ``fn`` over ``items`` (one thread)."""
    c0, t0 = time.thread_time(), time.perf_counter()
    for it in items:
        fn(it)
    n = len(items)
    return {
        "cpu_ms": (time.thread_time() - c0) / n * 1e3,
        "wall_ms": (time.perf_counter() - t0) / n * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=640)
    ap.add_argument("--name", default="input_stages")
    a = ap.parse_args()
    torch.set_num_threads(1)  # one loader worker's view
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sysu"
        write_sysu(root, SynthSpec(ids=max(8, a.images // 40), height=H, width=W))
        paths = [s.path for s in load_sysu_mm01(root).train][: a.images]
        cache = build_cache(paths, H, W, Path(tmp) / "cache")
        rows = list(range(len(paths)))
        stages = {
            "decode": per_image(lambda p: np.asarray(load_rgb(p)), paths),
            "cache_read": per_image(lambda i: np.array(cache[i]), rows),
        }
        arrays = [np.array(cache[i]) for i in rows]
        for recipe, kw in RECIPES.items():
            tf = build_train_transforms(H, W, **kw)
            vis2 = tf["visible2"]

            def visible(x, tf=tf, vis2=vis2):
                return [tf["visible"](x)] + ([vis2(x)] if vis2 is not None else [])

            stages[f"transform_{recipe}_visible"] = per_image(visible, arrays)
            stages[f"transform_{recipe}_infrared"] = per_image(tf["infrared"], arrays)
        items = [([torch.zeros(3, H, W)], 0, 1, i % 2, i) for i in range(64)]
        c0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(10):
            collate_views(items)
        stages["collate"] = {
            "cpu_ms": (time.thread_time() - c0) / 640 * 1e3,
            "wall_ms": (time.perf_counter() - t0) / 640 * 1e3,
        }
    load.append(os.getloadavg()[0])
    # per training image: half visible (two views with CAJ), half infrared
    out = {}
    for recipe in RECIPES:
        t = (
            stages[f"transform_{recipe}_visible"]["cpu_ms"]
            + stages[f"transform_{recipe}_infrared"]["cpu_ms"]
        ) / 2
        for source in ("cache_read", "decode"):
            ms = stages[source]["cpu_ms"] + t + stages["collate"]["cpu_ms"]
            out[f"{recipe}_{source}"] = {
                "cpu_ms_per_image": ms,
                "images_per_s_per_core": 1e3 / ms,
                "workers_for_3000": TARGET * ms / 1e3,
            }
    emit(
        a.name,
        {
            "size": f"{H}x{W}",
            "images": len(paths),
            "stages": stages,
            "per_image": out,
            "load_avg": load,
            "note": "CPU seconds of one thread (time.thread_time); wall seconds under load",
        },
    )


if __name__ == "__main__":
    main()
