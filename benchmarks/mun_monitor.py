"""What MUN's runs of the effects table logged per epoch, beside the losses: how often L_ia's
hinge was active (``ia_active``: 1 = the margin α was never met), the learnable layer
scales (mean I_scale of each IML, mean C_scale) and ‖W_p − I‖_F of each prototype matrix,
averaged over seeds, next to what weight decay alone would make of them.

It reads the run folders ``bench_effects.py`` left under ``.cache/bench_effects/run/``
(same rows, seeds and ``--tag``); a row whose runs are missing is skipped.

    python benchmarks/mun_monitor.py --seeds 0 1 2 3 4 --tag mun-x1 --out mun_monitor

Weight decay alone (no gradient) multiplies a parameter by (1 − lr·wd) per step for AdamW
and by about (1 − lr·wd/(1 − momentum)) per step for SGD with momentum; ``decay_only`` is
that factor accumulated over the run's logged learning rates: a layer scale initialised at
1 that ends at ``decay_only`` learned nothing, and ‖W_p − I‖ ends near
(1 − decay_only)·√D when W_p only shrank.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from bench_effects import CACHE, GROUPS, ROOT, dataset, run_digest
from vireid.config import load_config
from vireid.data.synthetic import SynthSpec

KEYS = ("ia_active", "iscale_v", "iscale_r", "cscale", "wp_v", "wp_r", "wp_a")


def run_dir(config: Path, overrides: list[str], seed: int, root: Path, tag: str):
    """The run folder of one effects run and its config."""
    cfg = load_config(
        config,
        [
            *overrides,
            f"data.dataset.root={root}",
            f"data.cache_dir={CACHE / 'image-cache'}",
            f"train.seed={seed}",
            "eval.report=false",
            f"output_dir={CACHE / 'run'}",
        ],
    )
    return CACHE / "run" / run_digest(cfg, tag), cfg


def decay_only(history: list[dict], cfg) -> list[float]:
    """The factor weight decay alone applies by the end of each epoch."""
    t = cfg.train
    per_step = 1.0 if t.optimizer == "adamw" else 1.0 / (1.0 - t.momentum)
    out, log = [], 0.0
    prev_step = 0
    for h in history:
        steps = h["step"] - prev_step
        prev_step = h["step"]
        log += steps * math.log1p(-h["lr"] * t.weight_decay * per_step)
        out.append(math.exp(log))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--tag", default="")
    ap.add_argument("--rows", nargs="*", default=None)
    ap.add_argument("--out", default="mun_monitor")
    a = ap.parse_args()
    group = yaml.safe_load((GROUPS / "mun.yaml").read_text())
    root = dataset(SynthSpec())
    rows = []
    for row in group["rows"]:
        if a.rows is not None and row["name"] not in a.rows:
            continue
        hist, decay = [], None
        for s in a.seeds:
            d, cfg = run_dir(ROOT / group["config"], row.get("overrides", []), s, root, a.tag)
            path = d / "metrics.jsonl"
            if not (d.parent.parent / "runs" / f"{d.name}.json").is_file() or not path.is_file():
                continue  # unfinished or never run
            h = [json.loads(x) for x in path.read_text().splitlines()]
            # an interrupted earlier run of the same digest left its rows before this one's
            starts = [i for i, e in enumerate(h) if e["epoch"] == 1]
            h = h[starts[-1] :] if starts else h
            hist.append(h)
            decay = decay_only(h, cfg)
        if not hist:
            continue
        per_epoch = {}
        for k in KEYS:
            vals = [[e.get(k) for e in h] for h in hist]
            if all(v is not None for vs in vals for v in vs):
                per_epoch[k] = np.mean(np.array(vals, dtype=float), axis=0).round(4).tolist()
        rows.append(
            {
                "name": row["name"],
                "seeds": len(hist),
                "per_epoch": per_epoch,
                "decay_only": [round(x, 4) for x in decay],
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    emit(a.out, {"tag": a.tag, "seeds": a.seeds, "rows": rows})


if __name__ == "__main__":
    main()
