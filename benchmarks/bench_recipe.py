"""One epoch of shipped recipes at SYSU-MM01's exact scale: seconds per epoch, the
pseudo-label step's seconds, peak memory, on the device named in the result.

The data are the synthetic benchmark in SYSU-MM01's layout with the real training counts
(395 identities, 22,258 visible + 11,909 infrared images, 288x144; a few test identities,
unused: no evaluation runs). Images are rendered in parallel, once, into --data. The model
is the recipe's (ResNet-50, non-local as shipped), from random init unless its ImageNet
weights are on the machine (the cost is the same). Rows:

* ``agw_sysu``: one supervised epoch (one pass: 695 iterations of 8 ids x (4 V + 4 I));
* ``mmm_sysu``: its first epoch (pseudo-labels, CMC warm-up, 200 iterations);
* ``mmm_sysu_matching``: an epoch whose pseudo-label step runs MMM's multi-memory matching
  (``method.match_start_epoch=1 method.inter_start_epoch=1``), as every epoch from 10 on.

    python benchmarks/bench_recipe.py                      # full size (a GPU: minutes)
    python benchmarks/bench_recipe.py --scale tiny         # CPU smoke of this script
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb
from vireid.config import load_config
from vireid.data.synthetic import SynthSpec
from vireid.data.synthetic.identity import sample_identity
from vireid.data.synthetic.render import Canvas, render, sample_pose, view_mix
from vireid.data.synthetic.writer import SYSU_CAMS, _cameras, _rng, _save
from vireid.engine.run import train

ROOT = Path(__file__).resolve().parents[1]
SYSU = {"train_ids": 395, "visible": 22258, "infrared": 11909}
TEST_IDS = 8
ROWS = {
    "agw_sysu": ("configs/supervised/agw_sysu.yaml", []),
    "mmm_sysu": ("configs/unsupervised/mmm_sysu.yaml", []),
    "mmm_sysu_matching": (
        "configs/unsupervised/mmm_sysu.yaml",
        ["method.match_start_epoch=1", "method.inter_start_epoch=1"],
    ),
}
# --scale tiny: a CPU smoke of the script (counts / 200, a narrow ResNet-18, 2 iterations)
TINY = ["model.arch=resnet18", "model.width=0.125", "train.iters_per_epoch=2"]


def counts(total: int, ids: int, cams: int, seed: int) -> np.ndarray:
    """(ids, cams) image counts summing exactly to ``total``, each at least 1."""
    rng = np.random.default_rng(seed)
    out = np.ones((ids, cams), np.int64)
    out += rng.multinomial(total - ids * cams, np.full(ids * cams, 1 / (ids * cams))).reshape(
        ids, cams
    )
    return out


def _render_identity(args) -> int:
    out, spec, pid, per_cam = args
    canvas, cams = Canvas(spec.height, spec.width), _cameras(spec, SYSU_CAMS)
    ident = sample_identity(pid, _rng(spec, 3, pid), spec)
    for cid, n in per_cam.items():
        views = view_mix(cams[cid], _rng(spec, 7, pid, cid))
        for frame in range(1, n + 1):
            r = _rng(spec, 4, pid, cid, frame)
            img = render(canvas, ident, cams[cid], sample_pose(r, views, cams[cid], 0.15), r)
            _save(img, Path(out) / f"cam{cid}" / f"{pid:04d}" / f"{frame:04d}.jpg")
    return sum(per_cam.values())


def write_sysu_exact(out: Path, scale: int, workers: int) -> dict:
    """SYSU-MM01's layout with its training counts divided by ``scale``."""
    done = out / ".complete"
    ids = max(8, SYSU["train_ids"] // scale)
    vis = counts(SYSU["visible"] // scale, ids, 4, 1)
    ir = counts(SYSU["infrared"] // scale, ids, 2, 2)
    stats = {"train_ids": ids, "train_visible": int(vis.sum()), "train_infrared": int(ir.sum())}
    if done.is_file():
        return stats
    spec = SynthSpec(ids=ids + TEST_IDS, height=288, width=144)

    def per_cam(pid: int) -> dict[int, int]:
        if pid > ids:  # a test identity: unused, two images per modality
            return {1: 2, 3: 2}
        return dict(zip((1, 2, 4, 5, 3, 6), map(int, [*vis[pid - 1], *ir[pid - 1]]), strict=True))

    jobs = [(str(out), spec, pid, per_cam(pid)) for pid in range(1, ids + TEST_IDS + 1)]
    with ProcessPoolExecutor(workers) as pool:
        written = sum(pool.map(_render_identity, jobs, chunksize=4))
    (out / "exp").mkdir(parents=True, exist_ok=True)
    (out / "exp" / "val_id.txt").write_text("1\n")
    (out / "exp" / "train_id.txt").write_text(",".join(map(str, range(2, ids + 1))) + "\n")
    test = range(ids + 1, ids + TEST_IDS + 1)
    (out / "exp" / "test_id.txt").write_text(",".join(map(str, test)) + "\n")
    done.write_text(f"{written} images\n")
    return stats


def run_row(name: str, root: Path, tiny: bool, workers: int, work: Path) -> dict:
    recipe, extra = ROWS[name]
    over = [
        f"data.dataset.root={root}",
        f"output_dir={work / name}",
        f"data.cache_dir={work / 'cache'}",
        f"data.workers={workers}",
        "train.epochs=1",
        *extra,
        *(TINY if tiny else []),
    ]
    cfg = load_config(ROOT / recipe, over)
    if str(cfg.model.pretrained) in ("torchvision", "synthetic"):
        from vireid.engine.smoke_plan import weights_status

        if not weights_status(cfg.model)[0]:
            cfg.model.pretrained = None  # random init: the same cost
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    row = train(cfg, evaluate=False)["history"][-1]
    wall = time.perf_counter() - t0
    out = {
        "recipe": recipe,
        "overrides": extra + (TINY if tiny else []),
        "epoch_seconds": wall,
        "train_seconds": row["seconds"],
        "iterations": row["step"],
        "seconds_per_iteration": row["seconds"] / max(row["step"], 1),
        "pseudo_label_seconds": row.get("pseudo_label_seconds"),
        "random_init": cfg.model.pretrained is None,
    }
    if device.type == "cuda":
        out["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 2**30
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=["full", "tiny"], default="full")
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--data", type=Path, default=None, help="where the synthetic tree lives")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--out", default=None, help="results/<out>.json (default by device)")
    a = ap.parse_args()
    tiny = a.scale == "tiny"
    data = a.data or Path(tempfile.gettempdir()) / f"vireid-bench-recipe-{a.scale}"
    t0 = time.perf_counter()
    stats = write_sysu_exact(data, 200 if tiny else 1, a.workers)
    write_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as work:
        rows = {n: run_row(n, data, tiny, a.workers, Path(work)) for n in a.rows}
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    name = a.out or (
        "recipe_cpu_smoke" if tiny else f"recipe_{'gpu' if device != 'cpu' else 'cpu'}"
    )
    emit(
        name,
        {
            "device": device,
            "scale": a.scale,
            "data": {**stats, "height": 288, "width": 144, "write_seconds": write_s},
            "rows": rows,
            "note": "script smoke at 1/200 of SYSU-MM01 with a narrow ResNet-18: not a timing"
            if tiny
            else "one epoch at SYSU-MM01's training counts, ResNet-50, 288x144",
        },
    )


if __name__ == "__main__":
    main()
