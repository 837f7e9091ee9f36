"""Train and test AGW with the community's own scripts (mangye16/Cross-Modal-Re-ID-baseline,
``pre_process_sysu.py`` → ``train.py`` → ``test.py``), on a SYSU-layout tree, on CPU.

Run by ``parity.py`` in a fresh process per seed (their scripts keep state in module
globals and replace ``sys.stdout``). What changes, all at run time (``shims.py``):

* the shims (CPU, local initial weights instead of the ImageNet download, Pillow 10,
  tensorboardX);
* data paths: their hard-coded ``../Datasets/SYSU-MM01/`` is met by building that layout
  around the working directory (symlinks to the tree; ``ori_data`` points back at it), so
  only ``pre_process_sysu.py``'s absolute ``data_path`` is rewritten;
* image size: ``pre_process_sysu.py``'s 144 × 288 constants; ``--img_h/--img_w`` for the
  others;
* epoch count: ``train.py``'s ``range(start_epoch, 81 - start_epoch)``;
* class count: ``test.py`` hard-codes SYSU-MM01's 395 training ids to build the network
  it loads the checkpoint into; the tree's own count replaces it.

The final epoch's network is saved as ``{'net': state_dict, 'epoch': E - 1}``, AGW's
checkpoint format, then ``test.py`` evaluates it (10 gallery trials, BN feature) in
all-search and indoor mode. Output: one JSON file (``--result``).

    python benchmarks/parity/official_agw.py --official CHECKOUT --data TREE \\
        --init INIT.safetensors --size 64x32 --epochs 9 --seed 0 --work /tmp/agw0 \\
        --result /tmp/agw0.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from shims import SCALARS, apply_shims, run_script

CAMS = ("cam1", "cam2", "cam3", "cam4", "cam5", "cam6")
# their tensorboard tags -> vireid's names for the same per-epoch values
HISTORY = {"total_loss": "loss", "id_loss": "ce", "tri_loss": "triplet", "lr": "lr"}


def build_layout(work: Path, tree: Path) -> Path:
    """``work/Datasets/SYSU-MM01/{cam*,exp,ori_data}`` around the working dir
    ``work/run``, as their relative paths expect; returns the working dir."""
    root = work / "Datasets" / "SYSU-MM01"
    root.mkdir(parents=True, exist_ok=True)
    for name in (*CAMS, "exp"):
        link = root / name
        if not link.exists():
            link.symlink_to((tree / name).resolve())
    if not (root / "ori_data").exists():
        (root / "ori_data").symlink_to(".")
    run = work / "run"
    run.mkdir(exist_ok=True)
    return run


def train_ids(tree: Path) -> int:
    ids = set()
    for name in ("train_id.txt", "val_id.txt"):
        ids |= {int(x) for x in (tree / "exp" / name).read_text().split(",") if x.strip()}
    return len(ids)


def train(a, repo: Path, run: Path, common: list[str], ckpt: Path) -> dict:
    """``pre_process_sysu.py`` then ``train.py``; saves the last epoch as ``ckpt``."""
    import torch

    h, w = (int(x) for x in a.size.lower().split("x"))
    t0 = time.time()
    run_script(
        repo / "pre_process_sysu.py",
        [],
        run,
        {
            "data_path = '/home/datasets/prml/computervision/re-id/sysu-mm01/ori_data'": (
                "data_path = '../Datasets/SYSU-MM01/'"
            ),
            "fix_image_width = 144": f"fix_image_width = {w}",
            "fix_image_height = 288": f"fix_image_height = {h}",
        },
    )
    t1 = time.time()
    ns = run_script(
        repo / "train.py",
        [
            *common,
            "--seed",
            str(a.seed),
            "--lr",
            str(a.lr),
            "--batch-size",
            str(a.batch_size),
            "--num_pos",
            str(a.num_pos),
        ],
        run,
        {"range(start_epoch, 81 - start_epoch)": f"range(start_epoch, {a.epochs} - start_epoch)"},
    )
    t2 = time.time()
    torch.save({"net": ns["net"].state_dict(), "epoch": a.epochs - 1}, ckpt)
    return {
        # len(trainloader) is len(sampler) // batch, one short of the batches its
        # IdentitySampler actually draws (int(N / (P K)) + 1)
        "steps_per_epoch": len(ns["sampler"].index1) // (a.batch_size * a.num_pos),
        "seconds": {"preprocess": t1 - t0, "train": t2 - t1},
        # train.py's per-epoch means (AverageMeter over the epoch's batches), as it logs them
        "history": {ours: [v for _, v in SCALARS.get(tag, [])] for tag, ours in HISTORY.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", type=Path, required=True, help="checkout of the repository")
    p.add_argument("--data", type=Path, required=True, help="SYSU-layout tree")
    p.add_argument("--init", type=Path, required=True, help="initial ResNet-50 weights")
    p.add_argument("--size", default="64x32", help="HxW")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=8, help="P identities")
    p.add_argument("--num-pos", type=int, default=4, help="K images per modality")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--result", type=Path, required=True)
    p.add_argument("--modes", nargs="+", default=["all", "indoor"], help="test.py --mode")
    p.add_argument(
        "--test-only", action="store_true", help="test the final.t a finished run left in --work"
    )
    a = p.parse_args()
    h, w = (int(x) for x in a.size.lower().split("x"))
    if a.epochs < 2:
        raise SystemExit("--epochs: train.py tests (and needs) at least epoch 2")
    torch_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    import torch

    torch.set_num_threads(torch_threads)
    apply_shims(a.init)
    run = build_layout(a.work, a.data)
    repo = a.official.resolve()
    common = ["--dataset", "sysu", "--img_h", str(h), "--img_w", str(w), "--workers", "0"]
    ckpt = run / "save_model" / "final.t"
    out = {"side": "official", "method": "agw", "seed": a.seed, "checkpoint": str(ckpt)}
    if a.test_only:  # the run trained, then its test failed: test what it saved
        out["seconds"] = {}
    else:
        out.update(train(a, repo, run, common, ckpt))
    n_class = train_ids(a.data)
    for mode in a.modes:
        t = time.time()
        res = run_script(
            repo / "test.py",
            [*common, "--mode", mode, "--resume", ckpt.name],
            run,
            {"n_class = 395": f"n_class = {n_class}"},
        )
        out[f"sysu/{mode}/single"] = {
            "R1": float(res["cmc"][0]) * 100,
            "mAP": float(res["mAP"]) * 100,
            "mINP": float(res["mINP"]) * 100,
        }
        out["seconds"][f"test_{mode}"] = time.time() - t
    a.result.parent.mkdir(parents=True, exist_ok=True)
    a.result.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
