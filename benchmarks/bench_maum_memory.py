"""How much MAUM's proxy memory adds, per reading of "storing the MS-Proxies into memory
banks to increase the reference diversity": read from the runs of the effects table
(benchmarks/effects/maum.yaml), no new training.

Every MAUM run logs, per epoch of the unidirectional phase, ``mem_angle`` (mean angle in
degrees between the stored copies and the current proxies, over the copies held; runs
of the code before 747fd47 also counted identities without a copy, at 0°)
and ``mem_grad_cos`` (cosine between L_Uni's gradient on the batch's features with the
memory and with the current proxies alone; 1 = the memory changes nothing). This script
collects them for the rows that ran (same --tag, --seeds and --synth as the effects run)
and gives, per row, the per-epoch means over seeds and the phase-2 mean ± std over seeds.

    python benchmarks/bench_maum_memory.py --tag maum-x1 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from bench_effects import CACHE, ROOT, dataset, load_groups, run_config, run_digest
from vireid.data.synthetic import SynthSpec

KEYS = ("mem_angle", "mem_grad_cos")


def row_stats(group: dict, row: dict, seeds: list[int], root: Path, tag: str) -> dict | None:
    per_seed = []
    for s in seeds:
        cfg = run_config(ROOT / group["config"], row.get("overrides", []), s, root)
        log = CACHE / "run" / run_digest(cfg, tag) / "metrics.jsonl"
        if not log.is_file():
            return None
        epochs = [json.loads(x) for x in log.read_text().splitlines()]
        per_seed.append([e for e in epochs if all(k in e for k in KEYS)])
    if not per_seed[0]:
        return None  # no memory in this row
    out = {"epochs": [e["epoch"] for e in per_seed[0]], "seeds": seeds}
    for k in KEYS:
        vals = np.array([[e[k] for e in run] for run in per_seed])  # (seeds, epochs)
        phase = vals.mean(1)
        out[k] = {
            "per_epoch": vals.mean(0).round(4).tolist(),
            "mean": float(phase.mean()),
            "std": float(phase.std(ddof=1)) if len(phase) > 1 else 0.0,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", default="")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--synth", nargs="*", default=[], metavar="FACTOR=VALUE")
    ap.add_argument("--out", default="maum_memory")
    a = ap.parse_args()
    spec = SynthSpec(**{k: float(v) for k, v in (kv.split("=", 1) for kv in a.synth)})
    root = dataset(spec)
    (group,) = load_groups(["maum"])
    rows = {}
    for row in group["rows"]:
        if (stats := row_stats(group, row, a.seeds, root, a.tag)) is not None:
            rows[row["name"]] = {"overrides": row.get("overrides", []), **stats}
    emit(a.out, {"tag": a.tag, "dataset": spec.key(), "rows": rows})


if __name__ == "__main__":
    main()
