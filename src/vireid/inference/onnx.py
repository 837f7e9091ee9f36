"""ONNX export of the evaluation embedding: one graph with a ``modality`` input.

Inputs ``images`` (N, 3, H, W) float32 — RGB resized to the checkpoint's H × W, scaled to
[0, 1] and ImageNet-normalised, i.e. ``FeatureExtractor.preprocess`` — and ``modality``
(N,) int64 (0 visible, 1 infrared; any mix in one batch). Output ``feats`` (N, D) float32,
L2-normalised and flip-averaged when the checkpoint's ``eval.flip`` is set: the features
``FeatureExtractor`` and ``vireid index`` compute, to float rounding. The batch size is
dynamic. The modality routing becomes both stems on every image and a per-sample select
(``TwoStreamNet.stem_select``), since a graph cannot split a batch by its values.

Exporter: ``torch.onnx.export(dynamo=True)`` (``torch.export`` then onnxscript; the
default since torch 2.9, the TorchScript exporter is deprecated). Weights are stored in
the one ``.onnx`` file (models here are far below protobuf's 2 GB limit).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..evaluation.features import embed_batch
from ..utils.io import atomic_write, write_json
from ..utils.optional import require

INPUTS, OUTPUT = ("images", "modality"), "feats"


class EmbeddingGraph(nn.Module):
    """(images (N, 3, H, W), modality (N,)) → feats (N, D): the graph that is exported."""

    def __init__(self, net: nn.Module, flip: bool) -> None:
        super().__init__()
        if not hasattr(net, "stem_select"):
            raise ValueError(f"{type(net).__name__} cannot be exported; expected a TwoStreamNet")
        self.net, self.flip = net, flip

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        return embed_batch(
            lambda x, m: self.net(x, m, static=True)["feat"], images, modality, self.flip
        )


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    meta: Path  # the JSON sidecar: input size, normalisation, modality codes, model id
    max_abs_diff: float | None  # onnxruntime vs torch on random inputs (None: not checked)


def export_onnx(
    checkpoint: str | Path, out: str | Path, *, opset: int | None = None, verify: bool = True
) -> OnnxExport:
    """Write ``out`` (.onnx) and ``out`` with suffix .json; ``verify`` runs onnxruntime on
    two batches (2 and 3 images, both modalities) against torch."""
    from ..engine.restore import load_model, model_id

    require("onnxscript", "export")
    model, cfg, state, _ = load_model(checkpoint, "cpu")
    graph = EmbeddingGraph(model, cfg.eval.flip).eval()
    h, w = cfg.data.height, cfg.data.width
    # two images: torch.export specialises a size-1 dimension, and the batch must stay free
    example = (torch.randn(2, 3, h, w), torch.tensor([0, 1]))
    batch = torch.export.Dim("batch", min=1)
    out = Path(out)

    def write(tmp: str) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            # both inputs share the one batch Dim; the exporter says so and names it anyway
            warnings.filterwarnings("ignore", message="# The axis name")
            torch.onnx.export(
                graph,
                example,
                tmp,
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_shapes={"images": {0: batch}, "modality": {0: batch}},
                opset_version=opset,
                external_data=False,
                dynamo=True,
                verbose=False,
            )

    atomic_write(out, write)
    diff = _parity(out, model, cfg.eval.flip, h, w) if verify else None
    meta = write_json(
        out.with_suffix(".json"),
        {
            "format": "onnx",
            "inputs": {
                "images": {
                    "shape": ["batch", 3, h, w],
                    "dtype": "float32",
                    "preprocess": "RGB, resize to (height, width) with antialiasing "
                    "(PIL bilinear), scale to [0, 1], subtract mean, divide by std",
                    "mean": IMAGENET_MEAN,
                    "std": IMAGENET_STD,
                },
                "modality": {"shape": ["batch"], "dtype": "int64", "visible": 0, "infrared": 1},
            },
            "outputs": {OUTPUT: {"shape": ["batch", model.feat_dim], "dtype": "float32"}},
            "flip": cfg.eval.flip,
            "model_id": model_id(state),
            "onnxruntime_max_abs_diff": diff,
            "config": state["config"],
        },
    )
    return OnnxExport(out, meta, diff)


def _parity(path: Path, model: nn.Module, flip: bool, h: int, w: int) -> float:
    """Largest |onnxruntime − torch| over two random batches of mixed modality."""
    ort = require("onnxruntime", "export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for mods in ([1, 0], [0, 1, 1]):
        x, m = torch.randn(len(mods), 3, h, w, generator=gen), torch.tensor(mods)
        with torch.no_grad():
            ref = embed_batch(lambda x, m: model(x, m)["feat"], x, m, flip).numpy()
        got = session.run([OUTPUT], {"images": x.numpy(), "modality": m.numpy()})[0]
        diff = np.abs(got - ref)
        # NaN where only one side is NaN counts as the largest difference, not as none
        diff[np.isnan(got) & np.isnan(ref)] = 0
        worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max()))
    return worst
