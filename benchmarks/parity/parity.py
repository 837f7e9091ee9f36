"""Training parity with the community code: their scripts and vireid's matching recipe on
the same synthetic SYSU-layout tree, from the same initial weights, at the same image
size, batch and schedule, over several seeds each; R1/mAP of each side, mean ± std, the
difference against its standard error.

    python benchmarks/parity/parity.py agw --official CHECKOUT            # AGW train.py
    python benchmarks/parity/parity.py mmm_stage_a --official MMM_CHECKOUT   # Baseline.py
    python benchmarks/parity/parity.py agw --official CHECKOUT --seeds 0 1 2 \\
        --size 32x16 --ids 52 --per-camera 3 --epochs 6 --init zero_residual --out parity_agw

(the defaults: what a shared 2-core machine runs for three seeds a side in about an
hour; ``zero_residual`` because AGW's soft-margin triplet overflows from ``random`` at
this size, see ``ensure_init``).

Every run's result is kept under ``--work`` (``results/<target>_<side>_s<seed>.json``), so
an interrupted table resumes and only missing runs start. The official side runs in a
fresh process per seed (``official_<target>.py``, their scripts unmodified except the
run-time changes listed there); its final checkpoint is also imported into vireid
(``vireid import``) and scored by vireid's evaluator, which must agree with their test
script. Sides are not paired (no seed means the same draws on both), so the standard error
of the difference is sqrt(s_a²/n_a + s_b²/n_b); a gap beyond twice it is a finding.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from _common import emit, resnet50_init  # noqa: E402

METRICS = ("R1", "mAP", "mINP")
TARGETS = {
    "agw": {
        "recipe": HERE / "agw_vireid.yaml",
        "runner": HERE / "official_agw.py",
        # not indoor: their test.py needs >= 20 gallery identities left for every query
        # after the camera exclusion (it prints rank 20 and stacks the CMCs into one
        # array); indoor's two cameras leave 19 for some queries of the 52-id tree
        "protocols": ("sysu/all/single",),
        "import_format": "agw",
        "flip": False,
        "label": "their train.py",
    },
    "mmm_stage_a": {
        "recipe": HERE / "mmm_stage_a_vireid.yaml",
        "runner": HERE / "official_mmm.py",
        "protocols": ("sysu/all/single", "sysu/indoor/single"),
        "import_format": "mmm",
        "flip": True,  # Baseline.py's test flip-averages
        "label": "their Baseline.py, stage 1",
        "steps_per_epoch": 20,  # --iters of both sides (official_mmm.py, the recipe)
    },
}


# --------------------------------------------------------------------------- inputs
def ensure_tree(work: Path, ids: int, per_camera: int, h: int, w: int) -> Path:
    """The synthetic SYSU tree; ``per_camera`` images per identity and camera (the test
    identities' gallery cameras keep their 10, so the test sets stay whole): an epoch's
    steps scale with it, which is what sizes a run on a CPU."""
    from vireid.data.synthetic import SynthSpec, write_sysu

    root = work / f"synth_sysu_{ids}ids_{per_camera}pc_{h}x{w}"
    if not (root / "exp" / "test_id.txt").is_file():
        spec = SynthSpec(ids=ids, height=h, width=w, min_images=per_camera)
        write_sysu(root, replace(spec, max_images=per_camera))
    return root


def ensure_init(work: Path, kind: str, h: int, w: int) -> Path:
    """The ResNet-50 weights both sides start from (torchvision key names, no ``fc``):
    ``random`` (torchvision's initialisation, seed 0), ``zero_residual`` (the same with
    torchvision's ``zero_init_residual``: every bottleneck starts as the identity, which
    keeps a random network's features small enough for AGW's soft-margin triplet, whose
    ``log(1 + exp(d_ap - d_an))`` overflows float32 on the first step from ``random`` at
    32x16), ``standin`` (``vireid pretrain`` at this size) or a file."""
    import torch

    if kind not in ("random", "zero_residual", "standin"):
        return Path(kind)
    path = work / f"init_resnet50_{kind}_{h}x{w}.pth"
    if path.is_file():
        return path
    if kind in ("random", "zero_residual"):
        sd = resnet50_init(zero_residual=kind == "zero_residual")
    else:
        from vireid.pretrain import PretrainSpec, pretrain_backbone

        sd, _ = pretrain_backbone(
            PretrainSpec(arch="resnet50", width=1.0, height=h, image_width=w), print
        )
    torch.save({k: v for k, v in sd.items() if not k.startswith("fc.")}, path)
    return path


def steps_per_epoch(tree: Path, batch: int) -> int:
    """AGW's IdentitySampler: int(N / (P K)) + 1 batches, N = the larger modality's
    training images (train + val ids)."""
    ids = set()
    for name in ("train_id.txt", "val_id.txt"):
        ids |= {int(x) for x in (tree / "exp" / name).read_text().split(",") if x.strip()}
    counts = {"rgb": 0, "ir": 0}
    for cam in ("cam1", "cam2", "cam3", "cam4", "cam5", "cam6"):
        key = "ir" if cam in ("cam3", "cam6") else "rgb"
        for pid in ids:
            d = tree / cam / f"{pid:04d}"
            counts[key] += len(list(d.iterdir())) if d.is_dir() else 0
    return int(max(counts.values()) / batch) + 1


# ----------------------------------------------------------------------------- runs
def job_commands(target: str, side: str, seed: int, a, tree: Path, init: Path, result: Path):
    t = TARGETS[target]
    run_dir = a.work / "runs" / f"{target}_{side}_s{seed}"
    if side == "official":
        return [
            sys.executable,
            str(t["runner"]),
            "--official",
            str(a.official),
            "--data",
            str(tree),
            "--init",
            str(init),
            "--size",
            a.size,
            "--epochs",
            str(a.epochs),
            "--seed",
            str(seed),
            "--work",
            str(run_dir),
            "--result",
            str(result),
            *(["--modes", *[p.split("/")[1] for p in t["protocols"]]] if target == "agw" else []),
        ]
    h, w = a.size.split("x")
    overrides = [
        f"output_dir={run_dir}",
        f"data.dataset.root={tree}",
        f"data.height={h}",
        f"data.width={w}",
        f"model.pretrained={init}",
        f"train.epochs={a.epochs}",
        f"train.seed={seed}",
    ]
    if target == "agw":
        overrides.append(f"train.iters_per_epoch={steps_per_epoch(tree, 32)}")
    overrides += a.set  # a setting of vireid's side under test (--set)
    return [
        sys.executable,
        str(Path(__file__)),
        "_vireid",
        str(t["recipe"]),
        str(result),
        ",".join(t["protocols"]),
        *overrides,
    ]


def vireid_side(recipe: str, result: str, protocols: str, overrides: list[str]) -> None:
    """(in a child process) train vireid's recipe, evaluate the last epoch on each
    protocol, write the result JSON."""
    from vireid.config import load_config
    from vireid.engine.distributed import DistInfo
    from vireid.engine.restore import load_model
    from vireid.engine.run import eval_trials, run_evaluation, train

    cfg = load_config(recipe, overrides)
    t0 = time.time()
    # resume="auto": a run that finished (or stopped) under this --work is reused or
    # continued, not started again; evaluated below, on each protocol
    run = train(cfg, resume="auto", evaluate=False)
    out = {"side": "vireid", "seed": cfg.train.seed, "run_dir": run["run_dir"]}
    out["seconds"] = {"train+eval": time.time() - t0}
    lines = (Path(run["run_dir"]) / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line) for line in lines if line.strip()]
    # the loss terms this method logs (AGW: ce + triplet; the cluster memories: loss only)
    logged = ("loss", "ce", "triplet", "lr", "visible_clusters", "infrared_clusters")
    keys = [k for k in logged if all(k in e for e in epochs)]
    out["history"] = {k: [e[k] for e in epochs] for k in keys}
    model, cfg2, _, dev = load_model(Path(run["run_dir"]) / "last.pt", "cpu")
    for protocol in protocols.split(","):
        cfg2.eval.protocol = protocol
        res = run_evaluation(model, cfg2, dev, DistInfo(), eval_trials(cfg2))
        out[protocol] = {m: res.table()[m]["mean"] for m in METRICS}
    Path(result).parent.mkdir(parents=True, exist_ok=True)
    Path(result).write_text(json.dumps(out, indent=1))


def run_jobs(jobs: list[tuple[list[str], Path, Path]], parallel: int) -> None:
    """Run (command, result file, log file) jobs, ``parallel`` at a time; skip those
    whose result exists."""
    pending = [j for j in jobs if not j[1].is_file()]
    running: list = []
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    while pending or running:
        while pending and len(running) < parallel:
            cmd, result, log = pending.pop(0)
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"start {result.stem} (log {log})", flush=True)
            running.append(
                (
                    subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env),
                    result,
                )
            )
        time.sleep(5)
        for proc, result in list(running):
            if proc.poll() is not None:
                running.remove((proc, result))
                state = "done" if result.is_file() else f"FAILED (exit {proc.returncode})"
                print(f"{state}: {result.stem}", flush=True)


# -------------------------------------------------------------------------- summary
def cross_check(target: str, res: dict, tree: Path, size: tuple[int, int]) -> dict:
    """Their final checkpoint through ``vireid import`` + vireid's evaluator: the
    difference to their test script's numbers (their evaluation equals vireid's)."""
    from vireid.engine.distributed import DistInfo
    from vireid.engine.imported import import_checkpoint
    from vireid.engine.restore import load_model
    from vireid.engine.run import eval_trials, run_evaluation

    src = Path(res["checkpoint"])
    t = TARGETS[target]
    out, _, _ = import_checkpoint(
        src, src.with_suffix(".vireid.pt"), t["import_format"], root=tree, size=size, flip=t["flip"]
    )
    model, cfg, _, dev = load_model(out, "cpu")
    diffs = {}
    for protocol in TARGETS[target]["protocols"]:
        cfg.eval.protocol = protocol
        table = run_evaluation(model, cfg, dev, DistInfo(), eval_trials(cfg)).table()
        diffs[protocol] = {m: abs(table[m]["mean"] - res[protocol][m]) for m in METRICS}
    return diffs


def _std(v: np.ndarray) -> float | None:
    return float(v.std(ddof=1)) if len(v) > 1 else None


def _pm(side: dict) -> str:
    std = "–" if side["std"] is None else f"{side['std']:.1f}"
    return f"{side['mean']:.1f} ± {std} (n={side['n']})"


def markdown(result: dict) -> str:
    """The docs table: one line per protocol, R1 and mAP of each side and their
    difference (vireid − official) against twice its standard error."""
    lines = [
        f"| protocol | metric | official ({TARGETS[result['target']]['label']}) | vireid "
        "| difference ± 2 SE | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for protocol, row in result["rows"].items():
        for m in ("R1", "mAP"):
            r = row[m]
            bar = "–" if r["se"] is None else f"{2 * r['se']:.1f}"
            lines.append(
                f"| {protocol} | {m} | {_pm(r['official'])} | {_pm(r['vireid'])} | "
                f"{r['diff']:+.1f} ± {bar} | {r['verdict']} |"
            )
    return "\n".join(lines)


def loss_markdown(result: dict) -> str:
    """Per-epoch mean losses of each side (mean over the runs that recorded them)."""
    hist = result["loss_history"]
    if not hist:
        return ""
    n = {s: hist["loss"]["last_epoch"][s]["n"] for s in ("official", "vireid")}
    keys = [k for k in ("loss", "ce", "triplet") if k in hist]  # the terms both sides log
    head = "| epoch | " + " | ".join(f"{s} {k} (n={n[s]})" for s in n for k in keys)
    lines = [head + " |", "|---" * (1 + 2 * len(keys)) + "|"]
    curves = {(s, k): hist[k]["per_epoch_mean"][s] for s in n for k in keys}
    for e in range(len(curves["official", "loss"])):
        cells = [f"{curves[s, k][e]:.2f}" for s in n for k in keys]
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarize(target: str, results: dict[str, list[dict]]) -> dict:
    rows = {}
    for protocol in TARGETS[target]["protocols"]:
        row = {}
        for m in METRICS:
            sides = {s: np.array([r[protocol][m] for r in rs]) for s, rs in results.items()}
            stats = {s: (float(v.mean()), _std(v), len(v)) for s, v in sides.items()}
            (mo, so, no), (mv, sv, nv) = stats["official"], stats["vireid"]
            se = math.sqrt(so**2 / no + sv**2 / nv) if min(no, nv) > 1 else None
            diff = mv - mo
            if se is None:
                verdict = "no spread yet (one run on a side)"
            else:
                verdict = "within spread" if abs(diff) <= 2 * se else "gap"
            row[m] = {
                "official": {"mean": mo, "std": so, "n": no, "runs": sides["official"].tolist()},
                "vireid": {"mean": mv, "std": sv, "n": nv, "runs": sides["vireid"].tolist()},
                "diff": diff,
                "se": se,
                "verdict": verdict,
            }
        rows[protocol] = row
    return rows


def first_clusterings(results: dict[str, list[dict]]) -> dict:
    """Per seed, the cluster counts of each side's first clustering (visible, infrared):
    both sides cluster the same initial network's features of the same images, so with
    equal clustering code they are equal, whatever the random streams do later."""
    out = {}
    by_seed = {s: {r["seed"]: r.get("history", {}) for r in rs} for s, rs in results.items()}
    for seed in sorted(set(by_seed["official"]) & set(by_seed["vireid"])):
        sides = {
            s: [
                by_seed[s][seed].get(k, [None])[0]
                for k in ("visible_clusters", "infrared_clusters")
            ]
            for s in ("official", "vireid")
        }
        if None not in sides["official"] + sides["vireid"]:
            out[str(seed)] = {**sides, "equal": sides["official"] == sides["vireid"]}
    return out


def summarize_history(results: dict[str, list[dict]]) -> dict:
    """Per-epoch mean losses of each side (their train.py's logged epoch means, vireid's
    metrics.jsonl) averaged over the runs that recorded them, and the last epoch's
    difference against its standard error: at a scale where retrieval barely leaves
    chance, the loss curves are what shows whether the two trainings move alike."""
    out: dict = {}
    for key in ("loss", "ce", "triplet"):
        curves = {
            s: np.array([r["history"][key] for r in rs if r.get("history", {}).get(key)])
            for s, rs in results.items()
        }
        if any(len(c) == 0 for c in curves.values()):
            continue
        last = {s: c[:, -1] for s, c in curves.items()}
        stats = {s: (float(v.mean()), _std(v), len(v)) for s, v in last.items()}
        (mo, so, no), (mv, sv, nv) = stats["official"], stats["vireid"]
        se = math.sqrt(so**2 / no + sv**2 / nv) if min(no, nv) > 1 else None
        out[key] = {
            "per_epoch_mean": {s: c.mean(0).round(4).tolist() for s, c in curves.items()},
            "last_epoch": {
                "official": {"mean": mo, "std": so, "n": no},
                "vireid": {"mean": mv, "std": sv, "n": nv},
                "diff": mv - mo,
                "se": se,
            },
        }
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_vireid":
        return vireid_side(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--official", type=Path, required=True, help="checkout of their repository")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", default="32x16", help="image size HxW (both sides)")
    # 52: 21 test identities; AGW's test.py prints rank 20, so it needs 20 gallery ids
    p.add_argument("--ids", type=int, default=52, help="identities of the synthetic tree")
    p.add_argument("--per-camera", type=int, default=3, help="images per id and camera")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--init", default="zero_residual", help="random|zero_residual|standin|FILE")
    p.add_argument("--work", type=Path, default=Path("/tmp/vireid-parity"))
    p.add_argument("--jobs", type=int, default=1, help="runs at a time")
    p.add_argument("--out", default=None, help="results file stem (default parity_<target>)")
    p.add_argument("--no-run", action="store_true", help="summarise the runs already under --work")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides of vireid's side only (a candidate cause of a gap; use its own --work)",
    )
    a = p.parse_args()
    a.official, a.work = a.official.resolve(), a.work.resolve()
    h, w = (int(v) for v in a.size.split("x"))
    tree = ensure_tree(a.work, a.ids, a.per_camera, h, w)
    init = ensure_init(a.work, a.init, h, w)
    jobs = []
    for seed in a.seeds:
        for side in ("official", "vireid"):
            result = a.work / "results" / f"{a.target}_{side}_s{seed}.json"
            log = a.work / "logs" / f"{a.target}_{side}_s{seed}.log"
            jobs.append((job_commands(a.target, side, seed, a, tree, init, result), result, log))
    if not a.no_run:
        run_jobs(jobs, a.jobs)
    results: dict[str, list[dict]] = {"official": [], "vireid": []}
    missing = [str(result) for _, result, _ in jobs if not result.is_file()]
    for _, result, _ in jobs:
        if result.is_file():
            r = json.loads(result.read_text())
            results[r["side"]].append(r)
    if missing and not (a.no_run and all(results.values())):
        raise SystemExit(f"missing {missing[0]}: see its log under {a.work / 'logs'}")
    checks = [cross_check(a.target, r, tree, (h, w)) for r in results["official"]]
    out = {
        "target": a.target,
        "official": str(a.official),
        "settings": {
            "size": a.size,
            "ids": a.ids,
            "images_per_camera": a.per_camera,
            "epochs": a.epochs,
            "init": a.init,
            "seeds": a.seeds,
            "vireid_set": a.set,
            "steps_per_epoch": TARGETS[a.target].get("steps_per_epoch")
            or steps_per_epoch(tree, 32),
        },
        "missing_runs": [Path(m).stem for m in missing],
        "rows": summarize(a.target, results),
        "loss_history": summarize_history(results),
        "first_clusterings": first_clusterings(results),
        "official_through_vireid_eval_max_abs_diff": max(
            d for c in checks for per in c.values() for d in per.values()
        ),
        "seconds": {s: [r["seconds"] for r in rs] for s, rs in results.items()},
    }
    emit(a.out or f"parity_{a.target}", out)
    print(markdown(out))
    print(loss_markdown(out))


if __name__ == "__main__":
    main()
