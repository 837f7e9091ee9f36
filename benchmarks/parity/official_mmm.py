"""Train MMM's stage A with the community's own script (shijiangming1/MMM
``prepare_sysu.py`` → ``Baseline.py``, its first worker ``main_worker_stage1``: dual
cluster memories over per-modality Jaccard + DBSCAN pseudo-labels, the Cluster-Contrast
stage that ADCA, PGM and MMM share), on a SYSU-layout tree, on CPU.

Run by ``parity.py`` in a fresh process per seed. What changes, all at run time
(``shims.py``):

* the shims (CPU, Pillow 10, DataParallel as the plain module);
* data paths: ``prepare_sysu.py`` reads ``data/sysu`` relative to the working directory,
  which is built around the tree (symlinks); ``clustercontrast/datasets/sysu_{ir,rgb}.py``
  hard-code their author's absolute root, replaced by that directory; ``--data-dir`` for
  the test lists;
* initial weights: their ResNet reads ``./examples/pretrained/resnet50-19c8e357.pth``:
  that path holds the shared initial weights;
* image size: ``--height/--width``, and the infrared crop that ``Baseline.py`` hard-codes
  at 288 × 144;
* the pipeline stops after stage 1 (``main_worker_stage2``, the joint-memory stage, and
  MMM's ``main.py`` are not run: CPU time).

Output: their last-epoch checkpoint (``checkpoint.pth.tar``: ``{'state_dict':
{'module.' + key}, 'epoch', 'best_mAP'}``) and the last epoch's test numbers their script
printed (10 gallery trials, flip-averaged BN feature), in one JSON file (``--result``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from shims import apply_shims, patch_modules, read_weights, run_script

CAMS = ("cam1", "cam2", "cam3", "cam4", "cam5", "cam6")
AUTHOR_ROOT = "root='/data1/yxb/datasets/ReIDData/SYSU-MM01/'"
RESULT_LINE = re.compile(r"FC:\s+Rank-1: ([\d.]+)% .*?mAP: ([\d.]+)%\| mINP: ([\d.]+)%")


def build_layout(work: Path, tree: Path, init: Path) -> tuple[Path, Path]:
    run = work / "run"
    data = run / "data" / "sysu"
    data.mkdir(parents=True, exist_ok=True)
    for name in (*CAMS, "exp"):
        if not (data / name).exists():
            (data / name).symlink_to((tree / name).resolve())
    weights = run / "examples" / "pretrained" / "resnet50-19c8e357.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    if not weights.exists():
        import torch

        torch.save(read_weights(init), weights)
    return run, data


def last_results(log: Path) -> dict:
    """The last epoch's 'All Average' lines: all-search, then indoor."""
    text = log.read_text()
    blocks = text.split("All Average:")[1:]
    rows = [RESULT_LINE.search(b) for b in blocks]
    out = {}
    for mode, m in zip(("all", "indoor"), rows[-2:], strict=True):
        out[f"sysu/{mode}/single"] = {
            "R1": float(m[1]),
            "mAP": float(m[2]),
            "mINP": float(m[3]),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--init", type=Path, required=True)
    p.add_argument("--size", default="64x32")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32, help="per modality: P x K")
    p.add_argument("--num-instances", type=int, default=4)
    p.add_argument("--k1", type=int, default=10)
    p.add_argument("--k2", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--result", type=Path, required=True)
    a = p.parse_args()
    h, w = (int(x) for x in a.size.lower().split("x"))
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    apply_shims(None)
    run, data = build_layout(a.work.resolve(), a.data, a.init)
    repo = a.official.resolve()
    root = f"root='{data}/'"
    patch_modules(
        {
            "clustercontrast.datasets.sysu_ir": {AUTHOR_ROOT: root},
            "clustercontrast.datasets.sysu_rgb": {AUTHOR_ROOT: root},
        }
    )
    t0 = time.time()
    if not (data / "rgb_modify" / "bounding_box_train").is_dir():
        run_script(repo / "prepare_sysu.py", [], run)
    t1 = time.time()
    argv = [
        "--dataset", "sysu", "--data-dir", f"{data}/", "--height", str(h), "--width", str(w),
        "--epochs", str(a.epochs), "--iters", str(a.iters), "--batch-size", str(a.batch_size),
        "--num-instances", str(a.num_instances), "--k1", str(a.k1), "--k2", str(a.k2),
        "--seed", str(a.seed), "--workers", "0",
    ]  # fmt: skip
    logs = run / "logs"
    if logs.exists():
        shutil.rmtree(logs)
    run_script(
        repo / "Baseline.py",
        argv,
        run,
        {
            "T.RandomCrop((288, 144)),": "T.RandomCrop((height, width)),",
            "    main_worker_stage2(args,log_s1_name,log_s2_name,subdir,args.dataset)": (
                "    pass  # parity: stage 1 only"
            ),
        },
    )
    t2 = time.time()
    stage1 = next(logs.glob("*/sysu_s1"))
    out = {
        "side": "official",
        "method": "mmm_stage_a",
        "seed": a.seed,
        "checkpoint": str(stage1 / "checkpoint.pth.tar"),
        **last_results(stage1 / "log.txt"),
        "seconds": {"prepare": t1 - t0, "train+test": t2 - t1},
    }
    a.result.parent.mkdir(parents=True, exist_ok=True)
    a.result.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
