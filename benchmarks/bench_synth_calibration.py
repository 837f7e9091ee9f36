"""Calibration of the synthetic benchmark against the targets of docs/synthetic.md:
cross-modality metrics (sysu/all/single, all 10 trials) on the default synthetic dataset
(``SynthSpec()``, the sysu layout) of

* a random-init network (target: R1 < 10),
* the synthetic stand-in for ImageNet weights, untrained on the benchmark (zero-shot),
* the AGW quickstart from the stand-in (target: R1 in [40, 85]),
* the Cluster-Contrast quickstart from the stand-in (target: R1 >= half of AGW's),

each a mean over ``--seeds`` training seeds.

    python benchmarks/bench_synth_calibration.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from bench_effects import CACHE, dataset, run_one
from vireid.config import load_config
from vireid.data.synthetic import SynthSpec
from vireid.engine.distributed import DistInfo
from vireid.engine.run import eval_trials, run_evaluation
from vireid.models import build_model
from vireid.pretrain import PretrainSpec, weights_path
from vireid.utils.seed import seed_everything

CONFIGS = Path(__file__).parents[1] / "configs" / "quickstart"
METRICS = ("R1", "mAP", "mINP")


def untrained(root: Path, pretrained: str | None) -> dict:
    """Metrics of the AGW quickstart's network before any training on the benchmark."""
    cfg = load_config(
        CONFIGS / "agw_synth.yaml",
        [
            f"data.dataset.root={root}",
            f"data.cache_dir={CACHE / 'image-cache'}",
            "eval.report=false",
            f"model.pretrained={'null' if pretrained is None else pretrained}",
        ],
    )
    seed_everything(0)
    model = build_model(cfg.model, 2)
    res = run_evaluation(model, cfg, torch.device("cpu"), DistInfo(), eval_trials(cfg))
    return {k: res.to_json()["mean"][k] for k in METRICS}


def trained(root: Path, recipe: str, seeds: list[int]) -> dict:
    runs = [run_one(CONFIGS / f"{recipe}_synth.yaml", [], s, root, "") for s in seeds]
    row = {"seeds": seeds, "seconds": float(np.mean([r["seconds"] for r in runs]))}
    for k in METRICS:
        vals = [r[k] for r in runs]
        row[k] = {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)), "runs": vals}
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    a = ap.parse_args()
    spec = SynthSpec()
    root = dataset(spec)
    rows = {
        "random init": untrained(root, None),
        "stand-in, untrained": untrained(root, "synthetic"),
        "agw quickstart": trained(root, "agw", a.seeds),
        "cluster_contrast quickstart": trained(root, "cluster_contrast", a.seeds),
    }
    agw = rows["agw quickstart"]["R1"]["mean"]
    cc = rows["cluster_contrast quickstart"]["R1"]["mean"]
    targets = {
        "random init R1 < 10": rows["random init"]["R1"] < 10,
        "AGW R1 in [40, 85]": 40 <= agw <= 85,
        "Cluster-Contrast R1 >= AGW R1 / 2": cc >= agw / 2,
    }
    # the stand-in file (its name holds a digest of its settings and population)
    stand_in = weights_path(PretrainSpec()).name
    emit(
        "synth_calibration",
        {"dataset": spec.key(), "stand_in": stand_in, "rows": rows, "targets": targets},
    )


if __name__ == "__main__":
    main()
