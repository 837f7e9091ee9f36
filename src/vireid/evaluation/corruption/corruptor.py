"""The per-image hook the feature extractor calls: resize as the clean test path does,
then corrupt visible images.

The benchmark corrupts after ``TestData``'s resize to the model's input size and before
normalisation (CIL-CrossModal ``test.py``: ToPILImage → RandomCorruption → Resize (a
no-op) → ToTensor → Normalize). We resize with the clean path's own operation
(torchvision's antialiased bilinear ``Resize``, not AGW's PIL LANCZOS), so the only
difference between a clean and a corrupted feature is the corruption itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from torchvision.transforms import v2

from ...data.cache import load_rgb
from ...data.records import Modality, Sample
from .apply import corrupt_image
from .plan import CorruptionPlan, image_key


def resize_like_test(img, height: int, width: int) -> np.ndarray:
    """PIL image or (H, W, 3) uint8 → (height, width, 3) uint8, exactly the pixels the
    test transform (``build_test_transform``) resizes to."""
    t = v2.Resize((height, width), antialias=True)(v2.ToImage()(img))
    return t.permute(1, 2, 0).contiguous().numpy()


@dataclass(frozen=True)
class Corruptor:
    """``(sample, image) → (height, width, 3) uint8``. Visible images are corrupted with
    their random-mix draw, or with ``fixed`` = (type, severity) in a sweep; infrared
    images are only resized (bit-identical to the clean path)."""

    plan: CorruptionPlan
    height: int
    width: int
    root: str | None = None  # dataset root: image keys are relative to it
    fixed: tuple[str, int] | None = None

    def assignment(self, sample: Sample) -> tuple[str, int] | None:
        """The (type, severity) this sample gets; None for an infrared image."""
        if sample.modality is not Modality.VISIBLE:
            return None
        return self.fixed or self.plan.draw(image_key(sample.path, self.root))

    def __call__(self, sample: Sample, img) -> np.ndarray:
        arr = resize_like_test(img, self.height, self.width)
        chosen = self.assignment(sample)
        if chosen is None:
            return arr
        seed = self.plan.noise_seed(image_key(sample.path, self.root), *chosen)
        return corrupt_image(arr, chosen[0], chosen[1], seed)

    def image(self, sample: Sample) -> Image.Image:
        """The image as the model sees it (read from disk, resized, corrupted if visible):
        for previews and rank-report thumbnails."""
        return Image.fromarray(self(sample, load_rgb(sample.path)))
