"""``FeatureExtractor``: a trained checkpoint as a function from images to features.

It is the embedding of ``vireid index``, ``vireid search`` and ``vireid serve`` (they call
it), so its features are the ones a features file holds: the checkpoint's input size,
``eval.flip``, AMP setting and batch size, through ``evaluation.extract_features``.

Every input takes the route of an image file: a path is decoded by the loader
(``load_rgb``), a PIL image is converted to RGB, a uint8 array becomes a PIL image first,
so a file, ``Image.open(file)`` and ``np.asarray(Image.open(file))`` give the same
features. Example::

    from vireid import FeatureExtractor

    fe = FeatureExtractor("runs/agw_sysu/last.pt", device="cpu")
    feats = fe(["a.jpg", "b.jpg"], modality="infrared")  # (2, D) float32, L2-normalised
    sim = feats @ fe(pil_image, modality="visible").T  # cosine similarity
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.cache import load_rgb
from ..data.records import Modality, Sample

ImageInput = str | os.PathLike | Image.Image | np.ndarray


def as_rgb(item: ImageInput) -> Image.Image:
    """One input as an RGB PIL image: a path, a PIL image, or a uint8 array (H, W) grey,
    (H, W, 1) or (H, W, 3) RGB."""
    if isinstance(item, str | os.PathLike):
        return load_rgb(os.fspath(item))
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ValueError(f"image array of dtype {item.dtype}; expected uint8 (0-255)")
        if not (item.ndim == 2 or (item.ndim == 3 and item.shape[2] in (1, 3))):
            raise ValueError(f"image array of shape {item.shape}; expected (H, W) or (H, W, 3)")
        if item.size == 0:
            raise ValueError(f"image array of shape {item.shape} is empty")
        grey = item.ndim == 3 and item.shape[2] == 1
        return Image.fromarray(item[..., 0] if grey else item).convert("RGB")
    raise ValueError(
        f"cannot embed a {type(item).__name__}; expected an image path, a PIL image or a "
        "uint8 array"
    )


def as_items(images) -> list[ImageInput]:
    """A call's images as a list: one path / PIL image / (H, W[, C]) array, a (N, H, W, C)
    uint8 array, or a sequence of any of these."""
    if isinstance(images, str | os.PathLike | Image.Image):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, Sequence):
        return list(images)
    raise ValueError(
        f"cannot embed a {type(images).__name__}; expected an image, a (N, H, W, 3) uint8 "
        "array or a list of images"
    )


class _Decoded(Sequence):
    """In-memory inputs decoded one at a time as the loader asks (paths stay on disk)."""

    def __init__(self, items: list[ImageInput]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return as_rgb(self.items[i])


class FeatureExtractor:
    """``fe(images, modality)`` → (N, D) float32 L2-normalised features.

    ``device``: cpu, cuda, cuda:N, auto (default: the checkpoint's ``train.device``).
    ``batch_size``: images per forward pass (default: the checkpoint's
    ``eval.batch_size``, the one ``vireid index`` uses; features are equal bit for bit to
    a features file's for the same images in the same batches; another batching can
    change the last float bits, ~1e-7).
    """

    def __init__(
        self, checkpoint: str | Path, device: str | None = None, batch_size: int | None = None
    ) -> None:
        from ..engine.builders import featurizer
        from ..engine.distributed import DistInfo
        from ..engine.restore import load_model, model_id

        model, cfg, state, dev = load_model(checkpoint, device)
        if batch_size is not None:
            if batch_size < 1:
                raise ValueError(f"batch_size={batch_size}; expected a positive number")
            cfg.eval.batch_size = batch_size
        self.checkpoint = Path(checkpoint)
        self.model, self.cfg, self.device = model, cfg, dev
        self.model_id: str = model_id(state)
        self.trial: int | None = state.get("trial")  # RegDB: the split it was trained on
        self.dim: int = model.feat_dim
        self.height, self.width = cfg.data.height, cfg.data.width
        self._featurize = featurizer(model, cfg, dev, DistInfo())

    def __call__(self, images, modality: str | Modality = "visible") -> np.ndarray:
        """Features of ``images`` (see ``as_items``), all of one ``modality``."""
        mod = Modality.parse(modality)
        items = as_items(images)
        if all(isinstance(x, str | os.PathLike) for x in items):
            return self.embed_samples([Sample(os.fspath(p), -1, 0, mod) for p in items])
        samples = [Sample(f"<image {i}>", -1, 0, mod) for i in range(len(items))]
        return self.embed_samples(samples, _Decoded(items))

    def embed_samples(self, samples: Sequence[Sample], images=None) -> np.ndarray:
        """Features of ``samples`` (each routed by its own modality), read from their paths
        or from ``images`` (one RGB PIL image per sample)."""
        if not samples:
            return np.zeros((0, self.dim), np.float32)
        return self._featurize(list(samples), images)

    def preprocess(self, images) -> np.ndarray:
        """(N, 3, H, W) float32: the network's input for ``images`` (resized, scaled,
        ImageNet-normalised) — what an exported ONNX graph takes."""
        from ..data.transforms import build_test_transform

        tf = build_test_transform(self.height, self.width)
        items = as_items(images)
        if not items:
            return np.zeros((0, 3, self.height, self.width), np.float32)
        return np.stack([tf(as_rgb(x)).numpy() for x in items])
