"""Feature extraction: modality-routed forward, optional flip averaging, batched, with a
progress bar; and the portable ``.npz`` features file."""

from __future__ import annotations

import zipfile
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
from .ranking import non_finite_rows

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


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, read with ``allow_pickle=False``; any damage → one
    ``ValueError`` naming the file (numpy's own advice to allow pickles is never repeated)."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes); expected a .npz features file")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a .npz archive (no zip directory: truncated, corrupt or another "
            "format); expected a features file written by vireid"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                _check_member(zf, info)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except _Refused as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # zip, zlib, header and read errors of a damaged file
        if "pickle" in str(e):
            raise ValueError(f"{path}: {PICKLE_REFUSED}") from None
        first = (str(e).splitlines() or [""])[0][:200]
        raise ValueError(f"{path}: corrupt .npz ({type(e).__name__}: {first})") from None


PICKLE_REFUSED = "holds object arrays (pickled objects); refused: reading them could run code"


class _Refused(Exception):
    pass


def _check_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """An array's header must not ask for objects or for more bytes than the member holds
    (a lying header would make numpy allocate its whole declared size first)."""
    if not info.filename.endswith(".npy"):
        raise _Refused(f"member {info.filename!r} is not a .npy array")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        readers = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }
        if version not in readers:
            raise _Refused(f"array {info.filename!r}: unsupported .npy version {version}")
        shape, _, dtype = readers[version](f)
        header = f.tell()
    if dtype.hasobject:
        raise _Refused(PICKLE_REFUSED)
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need != info.file_size - header:
        raise _Refused(
            f"array {info.filename!r} declares shape {shape} ({need} bytes) but holds "
            f"{info.file_size - header} bytes: truncated or corrupt"
        )


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """Read and check a features file: the arrays of ``FEATURE_KEYS`` with one entry per
    row, integer ids, text paths/modalities, finite features of D >= 1 (as float32).
    ``allow_pickle=False`` so an untrusted file cannot run code; every problem is one
    ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"features file {path} {what}")
    data = _npz_arrays(path)
    missing = [k for k in FEATURE_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; expected {list(FEATURE_KEYS)}")
    feats = data["feats"]
    if feats.ndim != 2 or (len(feats) and feats.shape[1] == 0):
        raise ValueError(f"{path}: 'feats' has shape {feats.shape}; expected (N, D) with D >= 1")
    if feats.dtype.kind not in "fiu":
        raise ValueError(f"{path}: 'feats' has dtype {feats.dtype}; expected floats")
    for k, kinds, want in (
        ("pids", "iu", "integers"),
        ("camids", "iu", "integers"),
        ("paths", "U", "text"),
        ("modality", "U", "text"),
    ):
        if data[k].ndim != 1 or data[k].dtype.kind not in kinds:
            raise ValueError(
                f"{path}: '{k}' has dtype {data[k].dtype} and shape {data[k].shape}; "
                f"expected one {want} entry per row"
            )
        if len(data[k]) != len(feats):
            raise ValueError(f"{path}: '{k}' has {len(data[k])} entries, 'feats' has {len(feats)}")
        if kinds == "iu" and data[k].dtype.kind == "u" and len(feats) and data[k].max() >= 2**63:
            raise ValueError(f"{path}: '{k}' holds {data[k].max()}, beyond 64-bit integers")
    with np.errstate(over="ignore"):
        data["feats"] = feats = feats.astype(np.float32, copy=False)
    bad = non_finite_rows(feats)
    if bad.any():
        raise ValueError(
            f"{path}: {int(bad.sum())} feature row(s) hold NaN/Inf or values beyond float32 "
            f"(first: row {int(np.argmax(bad))}, {data['paths'][np.argmax(bad)]}); "
            "expected finite features"
        )
    for m in np.unique(data["modality"]):
        try:
            Modality.parse(str(m))
        except ValueError as e:
            raise ValueError(f"{path}: 'modality': {e}") from None
    if "split" in data:
        split = data["split"]
        odd = set(np.unique(split).astype(str)) - {"query", "gallery"}
        if split.dtype.kind != "U" or split.shape != (len(feats),) or odd:
            raise ValueError(
                f"{path}: 'split' must hold 'query' or 'gallery' per row (found {sorted(odd)})"
            )
    return data


def samples_from_features(data: dict[str, np.ndarray]) -> list[Sample]:
    return [
        Sample(str(p), int(i), int(c), Modality.parse(str(m)))
        for p, i, c, m in zip(
            data["paths"], data["pids"], data["camids"], data["modality"], strict=True
        )
    ]
