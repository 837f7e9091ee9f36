"""Run every CPU benchmark, then regenerate the README table (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "bench_eval.py",
    "bench_data.py",
    "bench_train.py",
    "bench_cluster.py",
    "bench_mmm_step.py",
    "bench_mmm_ablation.py",
    "bench_synth_calibration.py",
]

if __name__ == "__main__":
    for s in SCRIPTS:
        if (HERE / s).is_file():
            subprocess.run([sys.executable, str(HERE / s)], check=True)
    subprocess.run([sys.executable, str(HERE / "make_table.py")], check=True)
