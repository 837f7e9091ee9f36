"""What a checkpoint holds, for ``vireid info``: parameter counts, the cost of one
evaluation forward at the recipe's resolution, the feature dimension, the training recipe
and the dataset fingerprint (torchreid's ``compute_model_complexity``, with torch's own
counter).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one image of the
recipe's ``data.height`` × ``data.width``: a multiply-add is 2 FLOPs (papers that quote
"FLOPs" for ResNet-50 at 224 × 224 as 4.1 G count multiply-adds: that is ``macs`` here).
Convolutions and matrix products are counted, element-wise operations (BN, ReLU, GeM) are
not. ``eval.flip`` runs the forward twice per image.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..data.loader import MODALITY_INDEX
from ..data.records import Modality


def count_flops(model: torch.nn.Module, height: int, width: int) -> dict[str, int]:
    """FLOPs of one evaluation forward of a (3, height, width) image, per modality (the
    two-stream stems differ), and the feature dimension D of ``feat``."""
    was_training = model.training
    model.eval()
    out: dict[str, int] = {}
    try:
        for mod in Modality:
            x = torch.zeros(1, 3, height, width)
            m = torch.tensor([MODALITY_INDEX[mod]])
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                feats = model(x, m)
            out[mod.value] = int(counter.get_total_flops())
        out["dim"] = int(feats["feat"].shape[1])
    finally:
        model.train(was_training)
    return out


def model_facts(checkpoint: str | Path) -> dict:
    """Everything ``vireid info`` prints, as a JSON-ready dict."""
    from .restore import model_from_checkpoint, model_id

    model, cfg, state = model_from_checkpoint(checkpoint)
    eval_params = sum(
        p.numel() for n, p in model.named_parameters() if not n.startswith("classifier.")
    )
    cost = count_flops(model, cfg.data.height, cfg.data.width)
    flops = max(cost["visible"], cost["infrared"])
    return {
        "checkpoint": str(checkpoint),
        "model": {
            "name": cfg.model.name,
            "arch": cfg.model.arch,
            "width": cfg.model.width,
            "model_id": model_id(state),
        },
        "parameters": {
            "total": sum(p.numel() for p in model.parameters()),
            "evaluation": eval_params,  # without the identity classifier
            "buffers": sum(b.numel() for b in model.buffers()),
        },
        "input": {"height": cfg.data.height, "width": cfg.data.width, "flip": cfg.eval.flip},
        "flops_per_image": {"visible": cost["visible"], "infrared": cost["infrared"]},
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "feature_dim": cost["dim"],
        "recipe": {
            "method": cfg.method.name,
            "dataset": cfg.data.dataset.name,
            "trial": state.get("trial"),
            "epochs_trained": state["epoch"],
            "epochs": cfg.train.epochs,
            "steps": state.get("step"),
            "eval_protocol": cfg.eval.protocol,
            "batch": cfg.data.batch.model_dump(mode="json"),
            "lr": cfg.train.lr,
            "seed": cfg.train.seed,
            "output_dir": str(cfg.output_dir),
        },
        "dataset_fingerprint": state.get("fingerprint"),
    }
