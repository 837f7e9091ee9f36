"""ONNX parity at the test size and at the paper's size: ``vireid export --format onnx``,
then onnxruntime against ``FeatureExtractor`` (torch) on synthetic SYSU-layout images in
batches of 1, 7 and 32, both modalities mixed.

Models: the recipes' architectures with random weights whose BN statistics are moved off
their defaults and whose non-local blocks are switched on (a fresh AGW non-local block is
the identity), so every layer of the graph does arithmetic; random weights check the
graph, not a trained model's accuracy.

    flock /tmp/vireid-cpu.lock python benchmarks/bench_onnx.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from vireid.config import load_config
from vireid.data.records import Modality
from vireid.data.synthetic import SynthSpec, write_sysu
from vireid.inference import FeatureExtractor
from vireid.models import build_model
from vireid.models.non_local import NonLocal
from vireid.search import collect_images

ROOT = Path(__file__).parents[1]
MODELS = {
    "test size (configs/tests/instant.yaml)": ("configs/tests/instant.yaml", []),
    "paper size (configs/supervised/agw_sysu.yaml, flip on)": (
        "configs/supervised/agw_sysu.yaml",
        ["eval.flip=true"],
    ),
}


def random_checkpoint(config: str, overrides: list[str], out: Path) -> None:
    cfg = load_config(ROOT / config, ["model.pretrained=null", *overrides])
    net = build_model(cfg.model, 10).eval()
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, NonLocal):
            m.W[1].weight.data.fill_(0.05)
        elif isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d) and m.weight.any():
            m.running_mean.uniform_(-0.05, 0.05, generator=g)
            m.running_var.uniform_(0.8, 1.2, generator=g)
    state = {"model": {f"model.{k}": v for k, v in net.state_dict().items()}, "epoch": 0}
    state["config"] = json.dumps(cfg.model_dump(mode="json"))
    torch.save(state, out)


def parity(ckpt: Path, images: Path) -> dict:
    import onnxruntime as ort

    out = ckpt.with_suffix(".onnx")
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "vireid", "export", str(ckpt), str(out), "--format", "onnx"]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    export_s = time.perf_counter() - t
    fe = FeatureExtractor(ckpt, device="cpu")
    model = fe.cfg.model
    vis = collect_images([images / "cam1"], "visible")[:16]
    ir = collect_images([images / "cam3"], "infrared")[:16]
    samples = [s for pair in zip(vis, ir, strict=True) for s in pair]  # alternating
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    for chunk in (samples[:1], samples[:7], samples):
        want = fe.embed_samples(chunk)
        m = np.array([int(s.modality is Modality.INFRARED) for s in chunk], np.int64)
        (got,) = session.run(
            ["feats"], {"images": fe.preprocess([s.path for s in chunk]), "modality": m}
        )
        if not (np.isfinite(got).all() and np.isfinite(want).all()):
            raise RuntimeError(f"{ckpt}: non-finite features")
        worst = max(worst, float(np.abs(got - want).max()))
    return {
        "max_abs_diff": worst,
        "export_s": round(export_s, 1),
        "dim": fe.dim,
        "input": f"{fe.height}x{fe.width}",
        "flip": fe.cfg.eval.flip,
        "arch": f"{model.arch} width {model.width}, non-local {model.non_local}",
        "onnx_mb": round(out.stat().st_size / 2**20, 1),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        tmp = Path(tmp)
        write_sysu(tmp / "sysu", SynthSpec(ids=16, seed=3, height=128, width=64))
        runs = []
        for i, (name, (config, over)) in enumerate(MODELS.items()):
            ckpt = tmp / f"m{i}.pt"
            random_checkpoint(config, over, ckpt)
            runs.append({"model": name, **parity(ckpt, tmp / "sysu")})
            print(runs[-1], file=sys.stderr, flush=True)
    emit("onnx", {"images": 32, "batches": [1, 7, 32], "runs": runs})


if __name__ == "__main__":
    main()
