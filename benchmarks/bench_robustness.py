"""Corruption robustness of the AGW and MMM quickstarts on the synthetic benchmark
(SYSU-MM01-C protocol: the visible gallery of sysu/all/single corrupted): clean vs the
community's random mix, every type at every severity, and MMM's mCE with AGW as the
reference. Writes benchmarks/results/robustness.json and prints the Markdown tables of
docs/evaluation.md (stderr).

    python benchmarks/bench_robustness.py                 # synth data, trains both
    python benchmarks/bench_robustness.py --data DIR --agw A.pt --mmm M.pt   # given ones

The data is ``vireid synth --layout sysu --out DIR --ids IDS --seed SEED`` (the synthetic
benchmark's defaults otherwise); training uses configs/quickstart/{agw,mmm}_synth.yaml
unchanged, and each evaluation is the public command

    vireid eval CKPT --root DIR --trials T --corrupt all --severity 1-5
        --corrupt-seed S --sweep [--mce-reference AGW/robustness.json] --out OUT
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.config import load_config
from vireid.engine.run import train
from vireid.evaluation.corruption.tables import markdown_tables

CONFIGS = Path(__file__).parents[1] / "configs" / "quickstart"
MODELS = ("agw", "mmm")


def vireid(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vireid", *args], check=True, stdout=subprocess.DEVNULL)


def train_quickstart(name: str, root: Path, work: Path) -> tuple[Path, float]:
    cfg = load_config(
        CONFIGS / f"{name}_synth.yaml",
        [
            f"data.dataset.root={root}",
            f"output_dir={work / name}",
            f"data.cache_dir={work / 'cache'}",
            "eval.report=false",
        ],
    )
    t0 = time.perf_counter()
    train(cfg)
    return work / name / "last.pt", time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, help="an existing synthetic SYSU-layout root")
    ap.add_argument("--ids", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    ap.add_argument("--agw", type=Path, help="a trained AGW checkpoint (else trained here)")
    ap.add_argument("--mmm", type=Path, help="a trained MMM checkpoint (else trained here)")
    ap.add_argument("--trials", default="10")
    ap.add_argument("--corrupt-seed", default="0")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = a.data
        data_cmd = None
        if root is None:
            root = work / "synth"
            data_cmd = ["synth", "--layout", "sysu", "--out", str(root), "--ids", str(a.ids)]
            data_cmd += ["--seed", str(a.seed)]
            vireid(*data_cmd)
        ckpts = {"agw": a.agw, "mmm": a.mmm}
        rows, train_s = {}, {}
        for name in MODELS:
            if ckpts[name] is None:
                ckpts[name], train_s[name] = train_quickstart(name, root, work)
            out = work / f"eval_{name}"
            cmd = ["eval", str(ckpts[name]), "--root", str(root), "--trials", a.trials]
            cmd += ["--corrupt", "all", "--severity", "1-5", "--corrupt-seed", a.corrupt_seed]
            cmd += ["--sweep", "--out", str(out)]
            if name != "agw":
                cmd += ["--mce-reference", str(work / "eval_agw" / "robustness.json")]
            t0 = time.perf_counter()
            vireid(*cmd)
            res = json.loads((out / "robustness.json").read_text())
            res["eval_seconds"] = time.perf_counter() - t0
            # temporary folders named as placeholders: $DATA the dataset, $RUN the run
            res["command"] = "vireid " + " ".join(cmd).replace(str(root), "$DATA").replace(
                str(work), "$RUN"
            )
            res.pop("checkpoint")
            if res.get("mce"):
                res["mce"]["reference"] = "AGW"
            rows[name] = res
            print(f"\n### {name}\n\n{markdown_tables(res)}", file=sys.stderr)
    emit(
        "robustness",
        {
            "dataset": (
                "vireid " + " ".join(data_cmd).replace(str(root), "$DATA")
                if data_cmd
                else str(a.data)
            ),
            "configs": {n: f"configs/quickstart/{n}_synth.yaml" for n in MODELS},
            "checkpoints": {n: "trained here" if n in train_s else str(ckpts[n]) for n in MODELS},
            "train_seconds": train_s,
            "git": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
            ).stdout.strip(),
            "models": rows,
        },
    )


if __name__ == "__main__":
    main()
