"""Helpers shared by the benchmark scripts: machine description, peak memory of a fresh
child process, and the JSON result file that the README table is generated from."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    import torch

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs``) and return the current RSS in
    MB, so ``peak_rss_mb_since_reset() - reset_peak_rss()`` is one call's own peak."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_rss_mb_since_reset() -> float:
    return _status_mb("VmHWM")


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def run_child(script: str, *args: str, timeout: int = 3600) -> dict:
    """Run ``script`` with ``args`` in a fresh interpreter (so its peak memory is its own)
    and return the JSON object it prints on its last line."""
    out = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{script} {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(fn, *args, repeat: int = 1, **kwargs):
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, result


def emit(name: str, payload: dict) -> dict:
    """Print one JSON line and write it to benchmarks/results/<name>.json."""
    payload = {"benchmark": name, "machine": machine(), **payload}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload))
    return payload


def resnet50_init(zero_residual: bool) -> dict:
    """torchvision's ResNet-50 initialisation drawn with seed 0, torchvision key names
    without ``fc`` (what ``model.pretrained`` and the community ImageNet loaders read);
    ``zero_residual``: torchvision's ``zero_init_residual``, every bottleneck starts as
    the identity."""
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        sd = torchvision.models.resnet50(zero_init_residual=zero_residual).state_dict()
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}
