"""How far MUN's L_ia (Eq. 12) is from meeting its margin: for trained checkpoints, the gap
between the nearest other-identity centre and the farthest own-identity centre of each
auxiliary centre (neg − pos; the hinge α + pos − neg is met once the gap exceeds α), on
training batches, in four feature spaces:

* ``raw Z``: Eq. 12 as printed (GeM features);
* ``unit Z``: L2-normalised centres of Z (``ia_normalize: true``, the default);
* ``unit (Z − batch mean)``: normalised centres of Z centred on the batch;
* ``unit BN``: normalised centres of the BNNeck feature (``ia_feature: feat``).

    python benchmarks/mun_ia_gaps.py RUN_DIR [RUN_DIR ...] --batches 12 --out mun_ia_gaps

``RUN_DIR``: a training run of ``configs/quickstart/mun_synth.yaml`` on the effects
benchmark's data (``.cache/bench_effects/run/<digest>``, its ``last.pt`` and config).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.config import load_config
from vireid.data.datasets import build_dataset
from vireid.engine.builders import build_train_data
from vireid.engine.distributed import DistInfo
from vireid.losses.alignment import identity_centres
from vireid.methods import build_method
from vireid.models import build_model

ALPHAS = (0.55, 0.1, 0.05)


def pos_neg(f: dict, y: dict, unit: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 12's farthest positive and nearest negative centre distance per identity."""
    ids = torch.unique(y["a"])
    cs = [identity_centres(f[k], y[k], ids) for k in "avr"]
    ca, cv, cr = (F.normalize(c, dim=1) for c in cs) if unit else cs
    dv, dr = torch.cdist(ca, cv), torch.cdist(ca, cr)
    pos = torch.maximum(dv.diagonal(), dr.diagonal())
    own = torch.eye(len(ids), dtype=torch.bool)
    big = torch.finfo(dv.dtype).max
    neg = torch.minimum(
        dv.masked_fill(own, big).min(1).values, dr.masked_fill(own, big).min(1).values
    )
    return pos, neg


@torch.no_grad()
def gaps(run: Path, batches: int, seed: int) -> dict:
    cfg = load_config(run / "config.yaml", [f"train.seed={seed}"])
    data = build_train_data(cfg, DistInfo(), build_dataset(cfg.data.dataset))
    method = build_method(cfg.method, build_model(cfg.model, data.num_classes))
    state = torch.load(run / "last.pt", weights_only=True, map_location="cpu")
    method.load_state_dict(state["model"])
    method.train()  # the batch statistics training sees
    found = {k: [] for k in ("raw Z", "unit Z", "unit (Z − batch mean)", "unit BN")}
    for i, batch in enumerate(data.loader):
        if i == batches:
            break
        rows = method.forward_rows(batch)
        z, y = rows.z, rows.y
        mean = torch.cat(list(z.values())).mean(0)
        spaces = {
            "raw Z": (z, False),
            "unit Z": (z, True),
            "unit (Z − batch mean)": ({k: t - mean for k, t in z.items()}, True),
            "unit BN": (rows.bn, True),
        }
        for name, (f, unit) in spaces.items():
            found[name].append(torch.stack(pos_neg(f, y, unit), 1))
    out = {}
    for name, parts in found.items():
        pn = torch.cat(parts).numpy()
        gap = pn[:, 1] - pn[:, 0]
        out[name] = {
            "pos": float(pn[:, 0].mean()),
            "neg": float(pn[:, 1].mean()),
            "gap_p10_p50_p90": [float(np.percentile(gap, q)) for q in (10, 50, 90)],
            **{f"active_at_{a}": float((gap < a).mean()) for a in ALPHAS},
        }
    return {"run": run.name, "epoch": state.get("epoch"), "identities": len(gap), "spaces": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--seed", type=int, default=100, help="batch order (not a training seed)")
    ap.add_argument("--out", default="mun_ia_gaps")
    a = ap.parse_args()
    rows = [gaps(r, a.batches, a.seed) for r in a.runs]
    emit(a.out, {"batches": a.batches, "alphas": list(ALPHAS), "runs": rows})


if __name__ == "__main__":
    main()
