"""The effects table: every method's quickstart and its paper's ablation rows, over seeds,
on the synthetic benchmark (default factors, sysu layout, the synthetic pretraining
stand-in, CPU).

Rows live in ``benchmarks/effects/<method>.yaml``: a recipe, each row's overrides, the row
it is compared with and the direction the paper reports. For every row and seed one
training run; the table gives mean ± std of R1 / mAP / mINP (and, for the unsupervised
methods, the last epoch's cross-modality ARI), the loss terms the runs actually trained
with (read from their metrics, not declared), and a verdict on the paper's direction:

* ``reproduced``: the difference to the compared row has the paper's sign and exceeds
  the two-sided 95 % t bar (``crit`` standard errors: 4.30 at three seeds), paired by
  seed (every row of a group runs on the same seeds,
  data and per-epoch batch sampler; the error is that of the per-seed differences);
* ``opposite``: the other sign, beyond that bar;
* ``within spread``: neither.

A group's ``contrasts`` compare two differences, ``(a0 − a1) − (b0 − b1)`` per seed (e.g. a
component's gain under imbalance against its gain without), with the same verdict.

Each run's result is cached under ``.cache/bench_effects/`` by a digest of its explicit
(non-default) config values, the dataset, the stand-in and ``--tag``, so an interrupted
table resumes and a second call only runs what is missing.

    python benchmarks/bench_effects.py                    # every group, seeds 0 1 2
    python benchmarks/bench_effects.py --groups mmm maum --seeds 0 1 2 3 4
    python benchmarks/bench_effects.py --tag before-fix --out effects_before
    python benchmarks/bench_effects.py --groups mmm --rows "CMC only" "full (MMLM + Intra + Inter)"
    python benchmarks/bench_effects.py --groups ecul --rows full "without TSMem"
    python benchmarks/bench_effects.py --groups mun --set model.pretrained=OLD.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, emit
from vireid.config import load_config
from vireid.data.synthetic import SynthSpec, write_sysu
from vireid.engine.run import train
from vireid.pretrain import PretrainSpec, weights_path

ROOT = Path(__file__).parents[1]
GROUPS = Path(__file__).parent / "effects"
CACHE = ROOT / ".cache" / "bench_effects"
METRICS = ("R1", "mAP", "mINP")
CLUSTER_KEYS = (
    "cross_ARI",
    "cross_ARI_all",
    "visible_ARI",
    "infrared_ARI",
    "visible_clusters",
    "infrared_clusters",
)
# joint clustering of the methods that cluster both modalities together (ECUL)
JOINT_KEYS = ("joint_ARI", "joint_NMI", "joint_clusters", "joint_outlier_ratio")


def load_groups(names: list[str] | None) -> list[dict]:
    groups = []
    for path in sorted(GROUPS.glob("*.yaml")):
        g = yaml.safe_load(path.read_text())
        g["group"] = path.stem
        if names is None or path.stem in names:
            groups.append(g)
    if names and len(groups) != len(names):
        known = sorted(p.stem for p in GROUPS.glob("*.yaml"))
        raise SystemExit(f"--groups {names}: known groups are {known}")
    return groups


def dataset(spec: SynthSpec) -> Path:
    key = hashlib.sha1(json.dumps(spec.key(), sort_keys=True).encode()).hexdigest()[:10]
    root = CACHE / f"synth-sysu-{key}"
    if not (root / "exp" / "test_id.txt").is_file():
        write_sysu(root, spec)
    return root


def run_digest(cfg, tag: str) -> str:
    """The cache key of one run: the config's non-default values (so a new config key with
    a default does not invalidate earlier runs), the tag and the stand-in. A change of a
    default's *behaviour* needs a new ``--tag``."""
    explicit = json.dumps(cfg.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
    return hashlib.sha1((explicit + tag + str(_stand_in(cfg))).encode()).hexdigest()[:16]


def run_config(config: Path, overrides: list[str], seed: int, root: Path):
    """The config of one effects run (its run folder is ``CACHE/run/<digest>``)."""
    return load_config(
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


def run_one(config: Path, overrides: list[str], seed: int, root: Path, tag: str) -> dict:
    cfg = run_config(config, overrides, seed, root)
    digest = run_digest(cfg, tag)
    cached = CACHE / "runs" / f"{digest}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    cfg.output_dir = CACHE / "run" / digest
    out = train(cfg)
    last = out["history"][-1]
    terms = sorted({t for h in out["history"] for t in h.get("terms", [])})
    result = {
        **{k: out["eval"]["mean"][k] for k in METRICS},
        **{k: last[k] for k in (*CLUSTER_KEYS, *JOINT_KEYS) if k in last},
        "terms": terms,
        "seconds": sum(h["seconds"] for h in out["history"]),
    }
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result))
    return result


def _stand_in(cfg) -> str | None:
    """The stand-in's file name (a digest of its settings) when the run starts from it."""
    if str(cfg.model.pretrained) != "synthetic":
        return None
    return weights_path(PretrainSpec(arch=cfg.model.arch, width=cfg.model.width)).name


def summarise(runs: list[dict]) -> dict:
    out = {"seeds": len(runs), "terms": sorted({t for r in runs for t in r["terms"]})}
    for k in (*METRICS, *CLUSTER_KEYS, *JOINT_KEYS):
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            out[k] = {
                "mean": float(np.mean(vals)),
                "std": float(np.std(vals, ddof=1) if len(vals) > 1 else 0.0),
                "runs": vals,
            }
    return out


def verdict(row: dict, ref: dict, direction: int, key: str = "R1") -> dict:
    """Row − reference on ``key`` against ``crit`` standard errors of the difference, the
    two-sided 95 % Student t quantile of its degrees of freedom (4.30 with three paired
    seeds, 2.78 with five: 2 SE would be an 82 % bar at three seeds).

    Rows of a group run on the same seeds, data and (seeded per epoch) batch sampler, so
    the runs are paired by seed: the error is that of the per-seed differences,
    std(d) / sqrt(n), with n − 1 degrees of freedom. Without common seeds (older result
    files) it falls back to the unpaired error of two independent means (n_a + n_b − 2)."""
    from scipy.stats import t as student_t

    a, b = row[key], ref[key]
    common = [s for s in row.get("seed_ids", []) if s in ref.get("seed_ids", [])]
    if len(common) >= 2:
        ia = {s: v for s, v in zip(row["seed_ids"], a["runs"], strict=True)}
        ib = {s: v for s, v in zip(ref["seed_ids"], b["runs"], strict=True)}
        d = np.array([ia[s] - ib[s] for s in common])
        diff, se, paired = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), True
        dof = len(d) - 1
    else:
        diff = a["mean"] - b["mean"]
        se = math.sqrt(a["std"] ** 2 / len(a["runs"]) + b["std"] ** 2 / len(b["runs"]))
        paired, dof = False, len(a["runs"]) + len(b["runs"]) - 2
    crit = float(student_t.ppf(0.975, max(dof, 1)))
    if abs(diff) <= crit * se or diff == 0:
        word = "within spread"
    else:
        word = "reproduced" if np.sign(diff) == direction else "opposite"
    return {
        "metric": key,
        "diff": diff,
        "se": se,
        "crit": crit,
        "dof": dof,
        "paired": paired,
        "verdict": word,
    }


def difference(row: dict, ref: dict, key: str = "R1") -> dict:
    """Row − reference per common seed, shaped like a row (for ``verdict``)."""
    common = [s for s in row["seed_ids"] if s in ref["seed_ids"]]
    ia = dict(zip(row["seed_ids"], row[key]["runs"], strict=True))
    ib = dict(zip(ref["seed_ids"], ref[key]["runs"], strict=True))
    d = [ia[s] - ib[s] for s in common]
    std = float(np.std(d, ddof=1)) if len(d) > 1 else 0.0
    return {"seed_ids": common, key: {"mean": float(np.mean(d)), "std": std, "runs": d}}


def contrast(rows: dict, c: dict) -> dict | None:
    """A row comparing two differences, ``(a0 − a1) − (b0 − b1)``, paired by seed: e.g.
    whether a component's gain holds under a harder setting. None if a row did not run."""
    if not all(n in rows for n in (*c["a"], *c["b"])):
        return None
    a, b = (difference(rows[x], rows[y]) for x, y in (c["a"], c["b"]))
    return {
        "name": c["name"],
        "a": c["a"],
        "b": c["b"],
        "a_diff": a["R1"]["mean"],
        "b_diff": b["R1"]["mean"],
        "paper_direction": c["direction"],
        "effect": verdict(a, b, c["direction"]),
    }


def merged(out: str, table: list[dict], seeds: list[int]) -> list[dict]:
    """``table``'s groups over those of an existing results file, in the file's order."""
    path = RESULTS / f"{out}.json"
    if not path.is_file():
        return table
    old = json.loads(path.read_text())
    if old["seeds"] != seeds:
        raise SystemExit(f"--merge: {path} has seeds {old['seeds']}, this run {seeds}")
    new = {g["group"]: g for g in table}
    kept = [new.pop(g["group"], g) for g in old["groups"]]
    return kept + list(new.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", nargs="*", default=None, help="effects/<name>.yaml to run")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--tag", default="", help="part of the run cache key (e.g. a code state)")
    ap.add_argument("--out", default="effects", help="results/<out>.json")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other groups of an existing results/<out>.json (same seeds only)",
    )
    ap.add_argument("--rows", nargs="*", default=None, help="only these row names")
    ap.add_argument(
        "--synth",
        nargs="*",
        default=[],
        metavar="FACTOR=VALUE",
        help="dataset other than the default, e.g. camera_shift=0.25 (a before/after pair "
        "measured on an earlier default)",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every run, e.g. model.pretrained=FILE (a before/after "
        "pair on the stand-in an earlier run used)",
    )
    a = ap.parse_args()
    spec = SynthSpec(**{k: float(v) for k, v in (kv.split("=", 1) for kv in a.synth)})
    root = dataset(spec)
    table = []
    for g in load_groups(a.groups):
        rows = {}
        if a.rows is not None:
            g["rows"] = [r for r in g["rows"] if r["name"] in a.rows]
        for row in g["rows"]:
            runs = [
                run_one(ROOT / g["config"], [*a.set, *row.get("overrides", [])], s, root, a.tag)
                for s in a.seeds
            ]
            rows[row["name"]] = summary = summarise(runs)
            summary["seed_ids"] = list(a.seeds)
            summary.update(name=row["name"], overrides=row.get("overrides", []))
            summary["paper"] = row.get("paper")
            print(json.dumps({"group": g["group"], **summary}), file=sys.stderr)
        for row in g["rows"]:
            ref = row.get("compare_to")
            if ref is not None and ref in rows:
                rows[row["name"]]["compare_to"] = ref
                rows[row["name"]]["paper_direction"] = row["direction"]
                rows[row["name"]]["effect"] = verdict(
                    rows[row["name"]], rows[ref], row["direction"]
                )
        entry = {
            "group": g["group"],
            "method": g["method"],
            "config": g["config"],
            "source": g.get("source"),
            "rows": list(rows.values()),
        }
        if found := [x for c in g.get("contrasts", []) if (x := contrast(rows, c))]:
            entry["contrasts"] = found
        table.append(entry)
    if a.merge:
        table = merged(a.out, table, a.seeds)
    emit(
        a.out,
        {
            "dataset": {k: v for k, v in spec.key().items()},
            "stand_in": "model.pretrained: synthetic (vireid pretrain defaults)",
            "seeds": a.seeds,
            "tag": a.tag,
            "set": a.set,
            "threads": os.environ.get("OMP_NUM_THREADS"),
            "groups": table,
        },
    )


if __name__ == "__main__":
    main()
