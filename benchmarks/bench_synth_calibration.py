"""Calibration of the synthetic benchmark: cross-modality metrics (sysu/all/single, 10
trials) of a random-init network and of the quickstart supervised recipes, on the default
synthetic dataset (100 identities, 128×64, difficulty 0.5 unless --difficulty).

    python benchmarks/bench_synth_calibration.py [--difficulty 0.5] [--recipes agw caj]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.config import load_config
from vireid.data.synthetic import SynthSpec, write_sysu
from vireid.engine.distributed import DistInfo
from vireid.engine.run import eval_trials, run_evaluation, train
from vireid.models import build_model
from vireid.utils.seed import seed_everything

CONFIGS = Path(__file__).parents[1] / "configs" / "quickstart"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--recipes", nargs="*", default=["agw", "caj"])
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        write_sysu(root, SynthSpec(ids=100, difficulty=a.difficulty))
        base = [f"data.dataset.root={root}", f"data.cache_dir={tmp}/cache", "eval.report=false"]
        cfg = load_config(CONFIGS / "agw_synth.yaml", [*base, f"output_dir={tmp}/rand"])
        seed_everything(0)
        model = build_model(cfg.model, 60)
        res = run_evaluation(model, cfg, torch.device("cpu"), DistInfo(), eval_trials(cfg))
        rows.append({"model": "random init (no training)", **res.to_json()["mean"]})
        for r in a.recipes:
            cfg = load_config(CONFIGS / f"{r}_synth.yaml", [*base, f"output_dir={tmp}/{r}"])
            out = train(cfg)
            rows.append(
                {
                    "model": f"{r} quickstart ({cfg.train.epochs} epochs, CPU)",
                    "seconds": sum(h["seconds"] for h in out["history"]),
                    **out["eval"]["mean"],
                }
            )
    emit(f"synth_calibration_d{a.difficulty}", {"difficulty": a.difficulty, "rows": rows})


if __name__ == "__main__":
    main()
