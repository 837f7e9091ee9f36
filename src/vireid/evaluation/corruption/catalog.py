"""The benchmark's 20 corruption types and the parsing of ``--corrupt`` / ``--severity``.

Order and names are those of the cross-modality benchmark (Chen, Wang, Zheng, NeurIPS 2021
D&B; Zoky-2020/CIL-CrossModal ``corruption.py``, ``RandomCorruption.corruption_type``):
19 ImageNet-C corruptions of the ``imagecorruptions`` package plus ``rain``.
"""

from __future__ import annotations

import difflib

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "rain",
    "jpeg_compression",
    "speckle_noise",
    "gaussian_blur",
    "spatter",
    "saturate",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
# ImageNet-C's families (Hendrycks & Dietterich, ICLR 2019); its four held-out types
# (speckle_noise, gaussian_blur, spatter, saturate) are one per family; rain is weather
GROUPS: dict[str, str] = {
    **dict.fromkeys(("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"), "noise"),
    **dict.fromkeys(
        ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"), "blur"
    ),
    **dict.fromkeys(("snow", "frost", "fog", "brightness", "rain", "spatter"), "weather"),
    **dict.fromkeys(
        ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"), "digital"
    ),
}


def parse_corruptions(text: str) -> tuple[str, ...]:
    """``'all'`` or comma-separated names → names in the benchmark's order (so the draw of
    an image does not depend on the order the user typed them in)."""
    text = text.strip()
    if text == "all":
        return CORRUPTIONS
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--corrupt {text!r}: expected 'all' or TYPE[,TYPE]")
    for n in names:
        if n not in CORRUPTIONS:
            close = difflib.get_close_matches(n, CORRUPTIONS, n=2, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"--corrupt: unknown corruption {n!r}.{hint} "
                f"Available: all, {', '.join(CORRUPTIONS)}"
            )
    return tuple(c for c in CORRUPTIONS if c in names)


def parse_severities(text: str) -> tuple[int, ...]:
    """``'1-5'`` (a range), ``'3'`` or ``'1,3,5'`` → sorted severities in 1..5."""
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        lo, sep, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(f"--severity {text!r}: expected 1-5, N or N,M") from None
        if not (1 <= a <= b <= 5):
            raise ValueError(f"--severity {text!r}: severities are 1..5 (low to high)")
        out.update(range(a, b + 1))
    return tuple(sorted(out))
