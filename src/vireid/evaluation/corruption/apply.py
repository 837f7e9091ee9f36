"""Apply one corruption to one image, reproducibly.

The 19 ImageNet-C types come from ``imagecorruptions`` (the maintained fork on PyPI as
``imagecorruptions-imaug``, extra ``corrupt``: the 1.1.2 release the benchmark pinned no
longer imports without ``pkg_resources`` and fails on numpy 2 / scikit-image ≥ 0.19 in
``fog``, ``glass_blur`` and ``gaussian_blur``). The library draws from numpy's *global*
legacy generator (and ``glass_blur`` / ``impulse_noise`` from a seed argument, unseeded
by default), so each call seeds it under a lock and restores the caller's state after.
"""

from __future__ import annotations

import threading

import numpy as np

from .catalog import CORRUPTIONS, SEVERITIES
from .rain import rain

MIN_SIDE = 32  # imagecorruptions refuses smaller images
_SEED_ARGUMENT = ("glass_blur", "impulse_noise")
_LOCK = threading.Lock()
INSTALL_HINT = "pip install 'vireid[corrupt]' (the imagecorruptions-imaug package)"


def library_available() -> bool:
    try:
        import imagecorruptions  # noqa: F401
    except ImportError:
        return False
    return True


def require_library(types: tuple[str, ...]) -> None:
    """Fail early, with the install command, when a chosen type needs the library."""
    if any(t != "rain" for t in types) and not library_available():
        raise ValueError(
            f"corruptions {', '.join(t for t in types if t != 'rain')} need {INSTALL_HINT}"
        )


def corrupt_image(img: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 → (H, W, 3) uint8 corrupted by ``name`` at ``severity`` (1..5).
    The same arguments give the same pixels in any process and call order.
    ``seed``: 0 ≤ seed < 2**32."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; expected one of {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"corruption severity {severity!r}: expected 1..5")
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"corruption input of shape {img.shape}: expected (H, W, 3) uint8")
    if name == "rain":
        return rain(img, severity, np.random.default_rng(seed))
    if min(img.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"corruption {name!r} on a {img.shape[0]}x{img.shape[1]} image: imagecorruptions "
            f"needs at least {MIN_SIDE}x{MIN_SIDE} pixels"
        )
    try:
        from imagecorruptions import corrupt
    except ImportError:
        raise ImportError(f"corruption {name!r} needs {INSTALL_HINT}") from None
    kwargs = {"seed": seed} if name in _SEED_ARGUMENT else {}
    with _LOCK:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            out = corrupt(img, severity=severity, corruption_name=name, **kwargs)
        finally:
            np.random.set_state(state)
    return np.array(out, dtype=np.uint8)  # a copy: PIL-backed outputs are read-only
