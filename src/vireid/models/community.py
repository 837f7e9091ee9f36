"""Released community checkpoints → ``TwoStreamNet`` weights.

The AGW baseline (mangye16/Cross-Modal-Re-ID-baseline ``model.py``), CAJ (``ICCV21_CAJ``,
the same network), DDAG (mangye16/DDAG ``model_main.py``) and MMM (shijiangming1/MMM
``model.py``; its cluster-contrast stage ``clustercontrast/models/agw.py``, as ADCA and
PGM) all build one ``embed_net``: three torchvision-layout ResNets of which the visible
and thermal ones contribute only their stem and the shared one only layer1–4, AGW's
non-local blocks ``NL_1..NL_4``, a BNNeck ``bottleneck`` and a bias-free ``classifier``.
Their checkpoints are dicts: ``{'net': state_dict, 'epoch', 'cmc', 'mAP', ...}`` (the
metrics are numpy values) or, from the cluster-contrast code, ``{'state_dict':
{'module.' + key: ...}, 'epoch', 'best_mAP'}``.

Files are read with ``torch.load(weights_only=True)``: tensors, containers, numbers and
the numpy arrays/scalars of the metrics (allow-listed below, also under numpy 1.x's module
names) load; anything else (a pickled ``argparse.Namespace``, a class) is refused. Every
key must map or be one the source network never uses in its forward pass (the unused
layers of its three ResNets, MMM's unused ``bottleneck_2``); DDAG's part-attention and
graph-attention heads have no counterpart and are refused unless ``drop_heads``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .two_stream import NON_LOCAL_LAYERS, RESNET_LAYERS
from .weights import WeightsError

# Built by the source network but never on its forward path: dropped on import.
UNUSED = re.compile(
    r"^(visible_module\.visible|thermal_module\.thermal)\.(layer\d|fc)\."
    r"|^base_resnet\.base\.(conv1|bn1|fc)\."
    r"|^bottleneck_2\."
)
# DDAG's heads: its FC_att feature (IWPA) and its training-only graph attention.
DDAG_HEADS = re.compile(r"^(wpa|attention_\d+|out_att|classifier1|classifier2)\.")
STEM = re.compile(r"^(visible_module\.visible|thermal_module\.thermal)\.(conv1|bn1)\.(.+)$")
LAYER = re.compile(r"^base_resnet\.base\.layer([1-4])\.(.+)$")
NONLOCAL = re.compile(r"^NL_([1-4])\.(\d+)\.(g\.0|theta|phi|W\.0|W\.1)\.(.+)$")


def _numpy_globals() -> list:
    """What pickled numpy arrays and scalars need (the metrics AGW/MMM save next to the
    weights), under numpy 2's and numpy 1's module names; nothing that runs code."""
    core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    out: list = [np.ndarray, np.dtype]
    for fn in (core.scalar, core._reconstruct):
        out += [fn, (fn, f"numpy.core.multiarray.{fn.__name__}")]
        out.append((fn, f"numpy._core.multiarray.{fn.__name__}"))
    out += [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "?")]
    return out


def read_community_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict with any ``module.`` prefix removed, the container's other entries)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint file does not exist")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for unsafe or corrupt files
        unsafe = _unsafe_globals(path)
        why = f"it pickles {', '.join(unsafe[:3])}" if unsafe else str(e).splitlines()[0]
        raise WeightsError(
            f"{path}: not loadable as weights only ({why}); vireid reads tensors, numbers "
            "and numpy metrics, never arbitrary pickled objects"
        ) from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a checkpoint dict, got {type(obj).__name__}")
    for key in ("net", "state_dict"):
        if isinstance(obj.get(key), dict):
            sd, meta = obj[key], {k: v for k, v in obj.items() if k != key}
            break
    else:
        if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise WeightsError(
                f"{path}: no 'net' or 'state_dict' entry (keys {sorted(obj)[:5]}); expected "
                "an AGW/CAJ/DDAG/MMM checkpoint dict or a bare state dict"
            )
        sd, meta = obj, {}
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    return sd, meta


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: no list to offer
        return []


def map_embed_net(
    sd: dict[str, torch.Tensor], drop_heads: bool = False, source: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], dict]:
    """``embed_net`` keys → ``TwoStreamNet`` keys, and what the network must look like:
    ``{"arch", "width", "non_local", "num_classes"}``. Raises ``WeightsError`` naming the first key
    that maps nowhere."""
    out: dict[str, torch.Tensor] = {}
    heads = []
    for k, v in sd.items():
        if m := STEM.match(k):
            stream = 0 if m[1].startswith("visible") else 1
            out[f"stems.{stream}.{0 if m[2] == 'conv1' else 1}.{m[3]}"] = v
        elif m := LAYER.match(k):
            out[f"layers.{int(m[1]) - 1}.{m[2]}"] = v
        elif m := NONLOCAL.match(k):
            part = "g" if m[3] == "g.0" else m[3]
            out[f"non_local.{int(m[1]) - 1}.{m[2]}.{part}.{m[4]}"] = v
        elif k.startswith(("bottleneck.", "classifier.")):
            out[k] = v
        elif DDAG_HEADS.match(k):
            heads.append(k)
        elif not UNUSED.match(k):
            raise WeightsError(
                f"{source}: key {k!r} has no counterpart in vireid's two-stream network; "
                "expected an AGW/CAJ/DDAG/MMM embed_net checkpoint"
            )
    if heads and not drop_heads:
        raise WeightsError(
            f"{source}: DDAG heads ({heads[0]}, … {len(heads)} tensors: part attention, graph "
            "attention) have no counterpart; pass --drop-heads to import the global branch "
            "(DDAG's 'FC' feature, not its part-attention 'FC_att')"
        )
    return out, _infer_spec(out, source)


def _infer_spec(sd: dict[str, torch.Tensor], source: str) -> dict:
    counts = [len({k.split(".")[2] for k in sd if k.startswith(f"layers.{i}.")}) for i in range(4)]
    bottleneck = any(".conv3." in k for k in sd)
    arch = next(
        (a for a, n in RESNET_LAYERS.items() if n == counts and (a == "resnet50") == bottleneck),
        None,
    )
    if arch is None or "stems.0.0.weight" not in sd or "stems.1.0.weight" not in sd:
        raise WeightsError(
            f"{source}: found {counts} residual blocks per stage "
            f"({'bottleneck' if bottleneck else 'basic'} blocks) and "
            f"{'both' if 'stems.1.0.weight' in sd else 'not both'} modality stems; expected "
            "a two-stream ResNet-18/34/50"
        )
    nl = [len({k.split(".")[2] for k in sd if k.startswith(f"non_local.{i}.")}) for i in range(4)]
    if any(nl) and tuple(nl) != NON_LOCAL_LAYERS:
        raise WeightsError(
            f"{source}: non-local blocks per stage {nl}; vireid builds AGW's "
            f"{list(NON_LOCAL_LAYERS)}"
        )
    if "bottleneck.weight" not in sd:
        raise WeightsError(f"{source}: no 'bottleneck' (BNNeck) weights; expected embed_net's")
    cls = sd.get("classifier.weight")
    return {
        "arch": arch,
        # the community's networks are full width; narrower ones (tests) keep their own
        "width": sd["stems.0.0.weight"].shape[0] / 64,
        "non_local": any(nl),
        "num_classes": 0 if cls is None else int(cls.shape[0]),
    }
