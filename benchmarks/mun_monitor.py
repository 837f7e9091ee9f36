"""Do MUN's layer scales and prototype matrices W_p learn, or only decay? For the runs of the
effects table: the per-epoch logs (``ia_active``: the fraction of identities whose L_ia
hinge is active, 1 = α never met; the mean layer scales; ‖W_p − I‖_F) and the trained
parameters at the end of each run, averaged over seeds, next to what weight decay alone
would have made of them.

It reads the run folders ``bench_effects.py`` left under ``.cache/bench_effects/run/``
(same rows, seeds and ``--tag``); a row whose runs are missing is skipped.

    python benchmarks/mun_monitor.py --seeds 0 1 2 --tag final-r2 --out mun_monitor

Weight decay alone multiplies a parameter as a whole by one factor ``f``: a layer scale
initialised at 1 ends at ``f`` and W_p = f·I has ‖W_p − I‖_F = (1 − f)·√D. ``f`` is
simulated step by step with the run's optimiser (SGD with momentum/Nesterov, or AdamW) on
a scalar with zero loss gradient under the run's per-step learning rate, so it is exact for
either optimiser. The logged values are epoch means of per-step values, taken before each
step's update, so ``decay_only_epoch_mean`` is the same mean of ``f``; the end-of-run
values (from ``last.pt``) compare with ``decay_only_end``. Two end-of-run quantities are
0 under decay alone whatever ``f``: a scale's spread over channels (std / mean; all
channels start equal) and W_p's off-diagonal part relative to its diagonal
(‖W_p − diag W_p‖_F / mean diag W_p; W_p starts at I).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from bench_effects import CACHE, GROUPS, ROOT, dataset, run_digest
from vireid.config import load_config
from vireid.data.synthetic import SynthSpec
from vireid.engine.schedule import lr_factor
from vireid.methods.mun import MUN

KEYS = ("id", "acc", "ia_active", "iscale_v", "iscale_r", "cscale", "wp_v", "wp_r", "wp_a")
SCALES = {"iscale_v": "iml_v", "iscale_r": "iml_r", "cscale": "cml"}


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


def decay_only(cfg, steps_per_epoch: list[int]) -> tuple[list[float], float]:
    """Weight decay alone on a parameter initialised at 1: the mean factor over each
    epoch's steps (before each update, as the logged values) and the factor at the end."""
    t = cfg.train
    p = torch.nn.Parameter(torch.ones(()))
    if t.optimizer == "sgd":
        opt = torch.optim.SGD(
            [p], lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, nesterov=t.nesterov
        )
    else:  # AdamW: decoupled decay; Adam's update of a zero gradient is 0
        opt = torch.optim.AdamW([p], lr=t.lr, weight_decay=t.weight_decay)
    start = None if t.warmup_start_lr is None else t.warmup_start_lr / t.lr
    means = []
    for epoch, n in enumerate(steps_per_epoch):
        seen = []
        for j in range(n):
            progress = j / n if start is not None else 0.0
            f = lr_factor(epoch, t.warmup_epochs, t.milestones, t.gamma, start, progress)
            opt.param_groups[0]["lr"] = t.lr * f
            seen.append(float(p.detach()))
            p.grad = torch.zeros_like(p)
            opt.step()
        means.append(float(np.mean(seen)))
    return means, float(p.detach())


def end_of_run(checkpoint: Path, method_cfg) -> dict[str, float]:
    """The layer scales and W_p of one run (its ``last.pt``) that the run trained."""
    state = torch.load(checkpoint, weights_only=True, map_location="cpu")["model"]
    out = {"dim": float(len(state["prototypes.0.weight"]))}
    for name, module in SCALES.items() if method_cfg.auxiliary else ():
        g = state[f"generator.{module}.scale.gamma"]
        out[name] = float(g.mean())
        out[f"{name}_spread"] = float(g.std() / g.mean())
    trained = MUN._prototype_keys(SimpleNamespace(cfg=method_cfg))
    for i, k in enumerate("vra"):
        if k not in trained:
            continue
        w = state[f"prototypes.{i}.weight"]
        diag = w.diagonal()
        out[f"wp_{k}"] = float(torch.linalg.vector_norm(w - torch.eye(len(w))))
        out[f"wp_{k}_off"] = float(torch.linalg.vector_norm(w - torch.diag(diag)) / diag.mean())
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
        hist, ends, found, cfg = [], [], [], None
        for s in a.seeds:
            d, cfg = run_dir(ROOT / group["config"], row.get("overrides", []), s, root, a.tag)
            path = d / "metrics.jsonl"
            if not (d.parent.parent / "runs" / f"{d.name}.json").is_file() or not path.is_file():
                continue  # unfinished or never run
            h = [json.loads(x) for x in path.read_text().splitlines()]
            # an interrupted earlier run of the same digest left its rows before this one's
            starts = [i for i, e in enumerate(h) if e["epoch"] == 1]
            hist.append(h[starts[-1] :] if starts else h)
            ends.append(end_of_run(d / "last.pt", cfg.method))
            found.append(s)
        if not hist:
            continue
        steps = np.diff([0] + [e["step"] for e in hist[-1]]).tolist()
        epoch_means, f_end = decay_only(cfg, steps)
        per_epoch = {}
        for k in KEYS:
            vals = [[e.get(k) for e in h] for h in hist]
            if all(v is not None for vs in vals for v in vs):
                per_epoch[k] = np.mean(np.array(vals, dtype=float), axis=0).round(4).tolist()
        end = {k: round(float(np.mean([e[k] for e in ends])), 4) for k in ends[0]}
        dim = end.pop("dim")
        rows.append(
            {
                "name": row["name"],
                "seed_ids": found,
                "per_epoch": per_epoch,
                "decay_only_epoch_mean": [round(x, 4) for x in epoch_means],
                "end_of_run": end,
                "decay_only_end": round(f_end, 4),
                # ‖f·I − I‖_F: what ‖W_p − I‖ ends at under decay alone
                "decay_only_wp": round((1 - f_end) * math.sqrt(dim), 4),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    emit(a.out, {"tag": a.tag, "seeds": a.seeds, "rows": rows})


if __name__ == "__main__":
    main()
