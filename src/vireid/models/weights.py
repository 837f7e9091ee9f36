"""Load ImageNet ResNet weights from a local file into the two-stream network.

Nothing is downloaded. ``path`` is a ``.pth``/``.pt`` state dict (loaded with
``weights_only=True``) or a ``.safetensors`` file (torchvision key names; or a vireid
checkpoint or ``vireid export``, whose two stems and layers are taken as they are), or
the word ``torchvision`` to use a file already in torch's hub cache
(``~/.cache/torch/hub/checkpoints``), or the word
``synthetic`` for the synthetic benchmark's stand-in (``vireid.pretrain``: built on first
use, then cached). The stem weights go to both modality stems; ``fc`` is dropped.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..utils.logging import get_logger

log = get_logger(__name__)
TORCHVISION_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50-19c8e357.pth"),
}


class WeightsError(ValueError):
    """Pretrained weights are missing or do not fit the model."""


def _resolve(path: str | Path, arch: str, width: float) -> Path:
    if str(path) == "synthetic":
        from ..pretrain import PretrainSpec, ensure_weights

        return ensure_weights(PretrainSpec(arch=arch, width=width), log=log.info)
    if str(path) == "torchvision":
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        names = TORCHVISION_FILES[arch]
        for name in (names,) if isinstance(names, str) else names:
            if (hub / name).is_file():
                return hub / name
        raise WeightsError(
            f"model.pretrained=torchvision: no {arch} weights in {hub}; "
            "download them on a connected machine or pass a file path"
        )
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(
            f"model.pretrained: weights file {p} does not exist; expected a "
            f"local ImageNet {arch} state dict (.pth or .safetensors)"
        )
    return p


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt/unsafe files
        # never torch's own text: it advises weights_only=False, which runs the file's code
        from ..engine.checkpoint import refused_global

        name = refused_global(e)
        why = (
            f"refers to the Python object {name}, which a state dict never holds; refused "
            "(loading it could run code)"
            if name
            else "not a loadable state dict (corrupt, truncated or not a torch file)"
        )
        raise WeightsError(
            f"{path}: {why}; expected ImageNet weights (.pth or .safetensors)"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "config" in obj and isinstance(obj.get("model"), dict):
        obj = obj["model"]  # a vireid checkpoint (last.pt, or a `vireid import`)
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return obj


def map_resnet_keys(
    sd: dict[str, torch.Tensor], specific_stages: int = 0
) -> dict[str, torch.Tensor]:
    """torchvision ResNet keys → TwoStreamNet keys; the first ``specific_stages`` residual
    stages are copied into both stems (after conv1, bn1, relu, maxpool: index 4 on).

    A vireid export or checkpoint (``model.stems.…``) keeps its own two stems and
    layers: its backbone, whatever head it had."""
    if any(k.startswith("model.stems.") for k in sd):
        return {
            k.removeprefix("model."): v
            for k, v in sd.items()
            if k.startswith(("model.stems.", "model.layers."))
        }
    out = {}
    stem = {"conv1": "0", "bn1": "1"}
    for k, v in sd.items():
        k = k.removeprefix("module.")
        head, _, rest = k.partition(".")
        if head in stem:
            for s in (0, 1):
                out[f"stems.{s}.{stem[head]}.{rest}"] = v
        elif head.startswith("layer") and head[5:].isascii() and head[5:].isdigit():
            i = int(head[5:]) - 1
            if i < specific_stages:
                for s in (0, 1):
                    out[f"stems.{s}.{4 + i}.{rest}"] = v
            else:
                out[f"layers.{i - specific_stages}.{rest}"] = v
    return out


def load_pretrained(
    net: torch.nn.Module, path: str | Path, arch: str, width: float = 1.0, specific_stages: int = 0
) -> None:
    file = _resolve(path, arch, width)
    mapped = map_resnet_keys(read_state_dict(file), specific_stages)
    own = net.state_dict()
    wrong = [k for k, v in mapped.items() if k in own and own[k].shape != v.shape]
    missing_backbone = [
        k
        for k in own
        if k.startswith(("stems.", "layers."))
        and k not in mapped
        and "num_batches_tracked" not in k
    ]
    if wrong or not mapped or len(missing_backbone) > 0:
        detail = f"shape mismatch at {wrong[:3]}" if wrong else f"missing {missing_backbone[:3]}"
        raise WeightsError(
            f"{file}: does not fit a {arch} two-stream backbone ({detail}); "
            f"expected torchvision {arch} ImageNet weights (or `vireid pretrain --arch {arch} "
            f"--width {width:g}` for a narrow model)"
        )
    net.load_state_dict(mapped, strict=False)
    from ..pretrain import read_summary

    kind = "synthetic stand-in" if read_summary(file) else "ImageNet"
    log.info("loaded %s weights from %s (%d tensors)", kind, file, len(mapped))
