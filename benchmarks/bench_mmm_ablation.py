"""MMM ablation on the synthetic benchmark (fixed seed): the paper's rows — CMC only;
+ MMLM; + MMLM + Intra; + MMLM + Inter; full — trained with the CPU quickstart recipe
(configs/quickstart/mmm_synth.yaml) and evaluated on sysu/all/single (10 trials).
Reports R1 / mAP / mINP and the final epoch's correspondence ARI (multi-memory and
single-memory matching on the same features). Numbers are what they are: a small proxy.

    python benchmarks/bench_mmm_ablation.py [--ids 100] [--epochs 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.config import load_config
from vireid.data.synthetic import SynthSpec, write_sysu
from vireid.engine.run import train

CONFIG = Path(__file__).parents[1] / "configs" / "quickstart" / "mmm_synth.yaml"
ROWS = {
    # no SCA (and so no GMM confidence) in the first two rows, as benchmarks/effects/mmm.yaml
    "CMC only": [
        "method.mmlm=false",
        "method.lambda_intra=0",
        "method.lambda_inter=0",
        "method.confidence=false",
    ],
    "+ MMLM": ["method.lambda_intra=0", "method.lambda_inter=0", "method.confidence=false"],
    "+ MMLM + Intra": ["method.lambda_inter=0"],
    "+ MMLM + Inter": ["method.lambda_intra=0"],
    "full (MMLM + Intra + Inter)": [],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=8)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        write_sysu(root, SynthSpec(ids=a.ids, seed=0))
        for name, overrides in ROWS.items():
            cfg = load_config(
                CONFIG,
                [
                    f"data.dataset.root={root}",
                    f"output_dir={tmp}/run",
                    f"data.cache_dir={tmp}/cache",
                    "eval.report=false",
                    f"train.epochs={a.epochs}",
                    *overrides,
                ],
            )
            out = train(cfg)
            last = out["history"][-1]
            rows.append(
                {
                    "row": name,
                    **out["eval"]["mean"],
                    "cross_ARI": last.get("cross_ARI"),
                    "cross_ARI_single_memory": last.get("cross_ARI_single_memory"),
                    "visible_ARI": last.get("visible_ARI"),
                    "infrared_ARI": last.get("infrared_ARI"),
                }
            )
            print(rows[-1], file=sys.stderr)
    emit(
        "mmm_ablation",
        {
            "dataset": f"synthetic sysu layout, {a.ids} ids, seed 0",
            "config": "configs/quickstart/mmm_synth.yaml",
            "epochs": a.epochs,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
