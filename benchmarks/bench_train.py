"""Training throughput and peak memory of the two-stream ResNet-50 (AGW method: CE + WRT
triplet, SGD) at 288×144, batch P=8 ids × (4 visible + 4 infrared) = 64 images, on the
available device(s): fp32, AMP (bf16 / fp16) and channels_last on GPU.

The input is a fixed random batch (data loading is measured by bench_data.py).

    python benchmarks/bench_train.py [--device cpu|cuda] [--steps N] [--batch-ids P]
    python benchmarks/bench_train.py --device cpu --methods agw maum mun   # step cost per method
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb
from vireid.config import load_config
from vireid.engine.trainer import Trainer
from vireid.methods import build_method
from vireid.models import build_model


def make_batch(p: int, k: int, h: int, w: int, device) -> dict:
    n = 2 * p * k
    labels = torch.arange(p).repeat_interleave(k).repeat(2)
    return {
        "images": torch.randn(n, 3, h, w, device=device),
        "labels": labels.to(device),
        "camids": torch.zeros(n, dtype=torch.long, device=device),
        "modality": torch.tensor([0] * (p * k) + [1] * (p * k), device=device),
        "index": torch.arange(n, device=device),
    }


# each method on the network its recipes build (MUN: stem + layer1 modality-specific, the
# generator on layer1's 256 channels, no non-local blocks; configs/supervised/mun_*.yaml)
RECIPE_MODEL = {"mun": ["model.modality_specific=layer1", "model.non_local=false"]}


def measure(
    device: str, amp: str, channels_last: bool, steps: int, p: int, k: int, name: str = "agw"
) -> dict:
    over = ["model.pretrained=null", f"method.name={name}", *RECIPE_MODEL.get(name, [])]
    cfg = load_config(None, over)
    dev = torch.device(device)
    method = build_method(cfg.method, build_model(cfg.model, 200)).to(dev)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9)
    trainer = Trainer(
        method, opt, None, epochs=1, device=dev, hooks=[], amp=amp, channels_last=channels_last
    )
    batch = make_batch(p, k, cfg.data.height, cfg.data.width, dev)
    warm = 2 if dev.type == "cpu" else 5
    for i in range(warm + steps):
        if i == warm:
            if dev.type == "cuda":
                torch.cuda.synchronize()
                # steady state: cuDNN's autotuner workspaces of the warm-up steps excluded
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
        out = trainer.train_step(batch)
    float(out["loss"])  # waits for the device
    dt = time.perf_counter() - t0
    res = {
        "method": name,
        "device": device,
        "amp": amp,
        "channels_last": channels_last,
        "steps": steps,
        "model_overrides": RECIPE_MODEL.get(name, []),
        "batch_images": 2 * p * k,
        "images_per_s": steps * 2 * p * k / dt,
        "step_s": dt / steps,
    }
    if dev.type == "cuda":
        res["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        res["gpu"] = torch.cuda.get_device_name(0)
    else:
        res["peak_rss_mb"] = peak_rss_mb()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-ids", type=int, default=8)
    ap.add_argument(
        "--methods", nargs="+", default=None, help="compare methods' step cost (fp32, same run)"
    )
    a = ap.parse_args()
    k = 4
    if a.methods:
        runs = [measure(a.device, "off", False, a.steps or 2, a.batch_ids, k, m) for m in a.methods]
        base = runs[0]["images_per_s"]
        for r in runs:
            r["relative_to_first"] = r["images_per_s"] / base
        name = f"train_methods_{a.device}"
        model = "two_stream resnet50 + GeM, 288x144, each method's recipe network"
        emit(name, {"model": model, "runs": runs})
        return
    if a.device == "cpu":
        runs = [measure("cpu", "off", False, a.steps or 3, a.batch_ids, k)]
        name = "train_cpu"
    else:
        torch.backends.cudnn.benchmark = True
        runs = [
            measure("cuda", amp, cl, a.steps or 30, a.batch_ids, k)
            for amp, cl in (
                ("off", False),
                ("off", True),
                ("bf16", False),
                ("bf16", True),
                ("fp16", True),
            )
        ]
        name = "train_gpu"
    emit(name, {"model": "two_stream resnet50 + non-local + GeM, 288x144", "runs": runs})


if __name__ == "__main__":
    main()
