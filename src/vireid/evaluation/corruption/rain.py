"""``rain``, the benchmark's 20th corruption (not in ImageNet-C).

The benchmark code (MinghuiChen43/CIL-ReID ``datasets/make_dataloader.py``, copied by
Zoky-2020/CIL-CrossModal ``corruption.py``) composes two albumentations 0.5.2 transforms at
severity s: ``RandomRain`` with rain type drizzle (s = 1), heavy (s = 2, 3) or torrential
(s = 4, 5), ``blur_value = 2 + s``, ``brightness_coefficient = 1``; then
``RandomBrightness`` with both limits ``-(0.05 + 0.05 s)``, a fixed darkening. Written here
because albumentations 0.5.2 does not install beside numpy 2 and later releases changed
``RandomRain`` and removed ``RandomBrightness``. Parameters as in 0.5.2:

* slant ``int(uniform(-10, 10))``; ``area // 770`` drops of length 10 (drizzle),
  ``area // 600`` of length 30 (heavy), ``area // 500`` of length 60 (torrential);
* grey (200, 200, 200) lines one pixel wide drawn onto the image, then a box blur of the
  whole image with a ``(2 + s)``-pixel kernel (rain blurs the view);
* the HLS lightness scaling by ``brightness_coefficient = 1`` is the identity and is skipped;
* brightness: ``clip(x − (0.05 + 0.05 s) · 255)`` truncated to uint8, as its lookup table.

Drop positions come from a ``numpy`` generator instead of Python's global ``random``, so
an image's rain is a function of its seed. Images shorter than the drop length (CIL-ReID
upsamples those to height 65 first; albumentations would fail) start every drop at row 0.
"""

from __future__ import annotations

import numpy as np

RAIN_TYPES = {1: "drizzle", 2: "heavy", 3: "heavy", 4: "torrential", 5: "torrential"}
# rain type → (image area per drop, drop length in pixels)
DROPS = {"drizzle": (770, 10), "heavy": (600, 30), "torrential": (500, 60)}
DROP_COLOR = (200, 200, 200)


def rain(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 → (H, W, 3) uint8 with rain streaks, blur and darkening."""
    import cv2  # comes with the 'corrupt' extra (imagecorruptions depends on opencv)

    h, w = img.shape[:2]
    per_drop, length = DROPS[RAIN_TYPES[severity]]
    slant = int(rng.uniform(-10, 10))
    n = h * w // per_drop
    # 0.5.2: x in [slant, W] for a negative slant, else [0, W - slant]; y in [0, H - length]
    xs = rng.integers(min(slant, 0), w - max(slant, 0), n, endpoint=True)
    ys = rng.integers(0, max(h - length, 0), n, endpoint=True)
    out = np.array(img, dtype=np.uint8, order="C", copy=True)
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        cv2.line(out, (x, y), (x + slant, y + length), DROP_COLOR, 1)
    k = 2 + severity
    out = cv2.blur(out, (k, k))
    lut = np.arange(256, dtype=np.float32) - np.float32((0.05 + 0.05 * severity) * 255)
    return np.clip(lut, 0, 255).astype(np.uint8)[out]
