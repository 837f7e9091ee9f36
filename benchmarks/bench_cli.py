"""Start-up time of the command line: ``vireid --help`` and commands that stop at an
argument or config error, in a fresh interpreter each time, for this checkout and for a
reference revision (default ``5494897``, before the lazy imports) in the same run.

    OMP_NUM_THREADS=1 python benchmarks/bench_cli.py [--reference REV] [--repeat 7]

Wall time depends on the machine's load (the page cache and other processes); the CPU
time of the child (user + system) is the steadier figure, so both are reported, each the
median over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from _common import emit

ROOT = Path(__file__).parents[1]
CASES = {
    "help": ["--help"],
    "config_error": ["config", "validate", "configs/tests/instant.yaml", "train.epoch=3"],
    "missing_recipe": ["train", "no/such/recipe.yaml"],
    "eval_no_args": ["eval"],
}


def _source_of(rev: str, into: Path) -> Path:
    """``src/`` of revision ``rev`` extracted under ``into``."""
    blob = subprocess.run(
        ["git", "archive", "--format=tar", rev, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _time(src: Path, args: list[str]) -> tuple[float, float, int]:
    """(wall s, child CPU s, exit code) of one ``python -m vireid ARGS``."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "100"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    rc = subprocess.run(
        [sys.executable, "-m", "vireid", *args], cwd=ROOT, env=env, capture_output=True
    ).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, rc


def measure(src: Path, repeat: int) -> dict:
    out = {}
    for name, args in CASES.items():
        runs = [_time(src, args) for _ in range(repeat)]
        out[name] = {
            "wall_s": statistics.median(r[0] for r in runs),
            "cpu_s": statistics.median(r[1] for r in runs),
            "exit_code": runs[0][2],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default="5494897", help="git revision to compare with")
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    ours = measure(ROOT / "src", a.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        ref = measure(_source_of(a.reference, Path(tmp)), a.repeat)
    for name in CASES:
        ours[name]["speedup_cpu"] = ref[name]["cpu_s"] / max(ours[name]["cpu_s"], 1e-9)
        ours[name]["speedup_wall"] = ref[name]["wall_s"] / max(ours[name]["wall_s"], 1e-9)
    emit(
        "cli_startup",
        {
            "repeat": a.repeat,
            "reference": a.reference,
            "cases": {k: " ".join(v) for k, v in CASES.items()},
            "ours": ours,
            "reference_run": ref,
            "load_average": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
