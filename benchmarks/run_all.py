"""Run every CPU benchmark, then regenerate the README table (``make bench``). The GPU
results (train_gpu, cluster_gpu*) come from the commands in those scripts' docstrings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    ["bench_eval.py"],
    ["bench_data.py"],
    ["bench_train.py"],
    ["bench_train.py", "--device", "cpu", "--methods", "agw", "maum", "mun"],
    ["bench_cluster.py"],
    ["bench_mmm_step.py"],
    ["bench_synth_calibration.py"],
    ["bench_effects.py"],
    ["bench_robustness.py"],
    ["bench_index.py"],
    ["bench_onnx.py"],
    ["bench_serve.py"],
    ["bench_cli.py"],
]

if __name__ == "__main__":
    for script, *args in SCRIPTS:
        subprocess.run([sys.executable, str(HERE / script), *args], check=True)
    subprocess.run([sys.executable, str(HERE / "make_table.py")], check=True)
