"""What determines the stand-in weights (``PretrainSpec``, the cache key). Kept apart from
``train.py`` so the command line reads its defaults without importing torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..data.synthetic.spec import SynthSpec


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that determines the stand-in weights (the cache key)."""

    arch: str = "resnet18"
    width: float = 0.5
    height: int = 64
    image_width: int = 32
    ids: int = 400
    images_per_id: int = 10
    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    # Colour augmentation, as ImageNet recipes use: ImageNet holds grey images and its
    # models see hue jitter. Both make the stand-in less colour-bound, so it transfers to
    # infrared zero-shot like ImageNet weights partly do (R1 21.6 vs 17.8 without hue).
    grayscale: float = 0.5  # probability of a grey copy
    hue: float = 0.5  # probability of a random permutation of the colour channels
    seed: int = 0

    def __post_init__(self):
        from ..models.two_stream import ARCHS  # torch: imported when a spec is made

        if self.arch not in ARCHS:
            raise ValueError(f"arch={self.arch!r}: expected one of {sorted(ARCHS)}")
        if not 0 < self.width <= 1:
            raise ValueError(f"width={self.width}: expected a channel multiplier in (0, 1]")
        if self.ids < 2 or self.images_per_id < 1 or self.epochs < 1:
            raise ValueError("expected ids >= 2, images_per_id >= 1 and epochs >= 1")

    def key(self) -> dict:
        # the population's factors come from SynthSpec's defaults: a recalibration of those
        # changes the weights, so it must change the cache key too
        return {**asdict(self), "population": self.population().key()}

    def population(self) -> SynthSpec:
        return SynthSpec(ids=self.ids, seed=self.seed, height=self.height, width=self.image_width)
