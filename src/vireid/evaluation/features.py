"""Feature extraction: modality-routed forward, optional flip averaging, batched, with a
progress bar; and the portable ``.npz`` features file."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.loader import ImageDataset, make_loader
from ..data.records import Modality, Sample
from ..data.transforms import build_test_transform
from ..utils.io import atomic_write
from ..utils.progress import progress_bar

FEATURE_KEYS = ("feats", "pids", "camids", "modality", "paths")


def embed_batch(forward, x: torch.Tensor, m: torch.Tensor, flip: bool, renormalize: bool = True):
    """The evaluation feature of one batch: ``forward(x, m)`` (N, D) L2-normalised, with
    ``flip`` averaged with the mirror image's. The one definition that ``extract_features``
    and the exported ONNX graph share."""
    f = F.normalize(forward(x, m), dim=1)
    if flip:
        f2 = F.normalize(forward(torch.flip(x, dims=[3]), m), dim=1)
        f = F.normalize(f + f2, dim=1) if renormalize else (f + f2) / 2
    return f


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    samples: Sequence[Sample],
    height: int,
    width: int,
    *,
    batch_size: int = 128,
    flip: bool = False,
    device: str | torch.device = "cpu",
    amp: str = "off",
    workers: int = 0,
    which: str = "feat",
    desc: str = "features",
    renormalize: bool = True,
    images: np.ndarray | None = None,
    image_index: Sequence[int] | None = None,
    corrupt=None,
) -> np.ndarray:
    """(N, D) float32 L2-normalised features of ``samples`` in order. ``flip`` averages
    the normalised features of the image and its mirror, then re-normalises (USL test
    scripts' ``extract_query_feat``); ``renormalize=False`` keeps the plain average, as the
    unsupervised code clusters it (ADCA/PGM/MMM ``evaluators.extract_features``).
    ``corrupt``: a ``(sample, image) -> image`` hook before the transform (robustness)."""
    was_training = model.training
    model.eval()
    loader = make_loader(
        # ``images``: the decoded-image cache of these samples, when the caller has one
        ImageDataset(
            samples,
            build_test_transform(height, width),
            images=images,
            image_index=image_index,
            corrupt=corrupt,
        ),
        batch_size=batch_size,
        workers=workers,
    )
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    device = torch.device(device)
    ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    out = []
    with progress_bar(desc, total=len(samples)) as advance:
        for batch in loader:
            x = batch["images"].to(device, non_blocking=True)
            m = batch["modality"].to(device)
            with ctx:
                f = embed_batch(lambda x, m: model(x, m)[which].float(), x, m, flip, renormalize)
            out.append(f.cpu())
            advance(len(x))
    model.train(was_training)
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def save_features(
    path: str | Path,
    feats: np.ndarray,
    samples: Sequence[Sample],
    split: Sequence[str] | None = None,
    model_id: str | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a features file. ``split`` (per row "query"/"gallery") fixes an explicit
    evaluation split; ``model_id`` records which weights produced the features; ``extra``
    adds arrays (a gallery index stores its faiss structure there)."""
    arrays = {
        "feats": np.asarray(feats, np.float32),
        "pids": np.array([s.pid for s in samples], np.int64),
        "camids": np.array([s.camid for s in samples], np.int64),
        "modality": np.array([s.modality.value for s in samples]),
        "paths": np.array([s.path for s in samples]),
    }
    if split is not None:
        arrays["split"] = np.asarray(split)
    if model_id is not None:
        arrays["model_id"] = np.asarray(model_id)
    arrays.update(extra or {})

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """Read a features file; ``allow_pickle=False`` so an untrusted file cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"features file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz features file ({e})") from None
    missing = [k for k in FEATURE_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; expected {list(FEATURE_KEYS)}")
    n = len(data["feats"])
    if data["feats"].ndim != 2:
        raise ValueError(f"{path}: 'feats' has shape {data['feats'].shape}; expected (N, D)")
    for k in FEATURE_KEYS[1:]:
        if len(data[k]) != n:
            raise ValueError(f"{path}: '{k}' has {len(data[k])} entries, 'feats' has {n}")
    return data


def samples_from_features(data: dict[str, np.ndarray]) -> list[Sample]:
    return [
        Sample(str(p), int(i), int(c), Modality.parse(str(m)))
        for p, i, c, m in zip(
            data["paths"], data["pids"], data["camids"], data["modality"], strict=True
        )
    ]
