"""What a synthetic dataset is made of: its size and its named factors of variation.

The factors are the knobs a user turns to make the cross-modality problem easier or
harder, each in [0, 1]:

* ``modality_gap``: how far an identity's infrared look departs from what its colours
  predict. Every fabric has a material whose infrared intensity is a material-specific
  function of its colour (relates to, does not equal, the colour); a fraction
  ``modality_gap`` of the fabrics (and of the backgrounds' brightness) is drawn
  independently instead. 0: infrared is predictable from colour and material; 1: colour
  says nothing about infrared (shape, layout, patterns and accessories remain).
* ``view_diversity``: how different the front, back and side of one person look (a back
  pattern unlike the front one, an open jacket showing a shirt, a backpack covering the
  back). 0: every view shows the same garments.
* ``view_shift``: how different the mix of views is between the visible and the infrared
  cameras (SYSU-MM01's infrared cameras see people from other directions than its colour
  cameras). 0: the same mix.
* ``camera_shift``: strength of camera-specific conditions (background, light gain and
  tint, blur, noise, distance). 0: every camera sees the same conditions.
* ``difficulty``: pose jitter, occlusion, sensor noise and palette size (look-alikes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FACTORS = ("modality_gap", "view_diversity", "view_shift", "camera_shift", "difficulty")

# Bump when rendering changes, so caches keyed on a spec (the pretraining stand-in) rebuild.
GENERATOR_VERSION = 2


@dataclass(frozen=True)
class SynthSpec:
    ids: int = 200
    seed: int = 0
    # Defaults calibrated so that the AGW quickstart from the stand-in lands inside the
    # benchmark's target band (R1 40-85 on sysu/all/single; docs/synthetic.md has the sweep).
    # 64 x 32 pixels: the size the quickstarts train at, so no resampling blurs the cues.
    height: int = 64
    width: int = 32
    modality_gap: float = 0.1
    view_diversity: float = 0.5
    view_shift: float = 0.5
    camera_shift: float = 0.25
    difficulty: float = 0.25
    min_images: int = 4
    max_images: int = 8
    gallery_images: int = 10  # per (test id, visible camera), so multi-shot works

    def __post_init__(self):
        if self.ids < 8:
            raise ValueError(f"ids={self.ids}: need at least 8 identities")
        for name in FACTORS:
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value}: expected a value in [0, 1]")
        if not 1 <= self.min_images <= self.max_images:
            raise ValueError(
                f"min_images={self.min_images}, max_images={self.max_images}: "
                "expected 1 <= min_images <= max_images"
            )
        if self.height < 32 or self.width < 16:
            raise ValueError(f"size {self.height}x{self.width}: expected at least 32x16")

    def key(self) -> dict:
        """Everything that determines the images (for cache keys)."""
        return {**asdict(self), "generator": GENERATOR_VERSION}
