"""Which corruption each image gets: a pure function of (seed, image key).

The benchmark's code draws ``np.random.choice`` per image in DataLoader workers without a
seed (Zoky-2020/CIL-CrossModal ``RandomCorruption``), so its corrupted test set changes on
every run. Here every draw comes from a generator seeded by the run seed and the image's
*key* (its path relative to the dataset root), so any run, any process and any batch
order corrupt an image the same way, and a dataset copy mounted elsewhere gets the same
corrupted set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .catalog import CORRUPTIONS, SEVERITIES


def image_key(path: str, root: str | Path | None) -> str:
    """``path`` relative to ``root`` in POSIX form; the absolute path when it is not
    below ``root`` (or no root is known, as for a manifest's files)."""
    p = Path(path).absolute()
    if root is not None:
        try:
            return p.relative_to(Path(root).absolute()).as_posix()
        except ValueError:
            pass
    return p.as_posix()


def _words(*parts: object) -> list[int]:
    """Four 32-bit words of the SHA-256 of ``parts``: a seed that no two keys share."""
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).digest()
    return np.frombuffer(digest[:16], dtype="<u4").tolist()


@dataclass(frozen=True)
class CorruptionPlan:
    """The corruption types and severities in play and the run seed.

    ``draw`` is the community's random mix (one uniform type, then one uniform severity
    per image); ``noise_seed`` seeds the corruption's own randomness. It depends on the
    (type, severity) too, so the mix gives an image exactly the pixels the sweep gives it
    for the (type, severity) it drew."""

    types: tuple[str, ...] = CORRUPTIONS
    severities: tuple[int, ...] = SEVERITIES
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [t for t in self.types if t not in CORRUPTIONS]
        if bad or not self.types:
            raise ValueError(f"corruption types {bad or '()'}: expected some of {CORRUPTIONS}")
        if not self.severities or any(s not in SEVERITIES for s in self.severities):
            raise ValueError(f"corruption severities {self.severities}: expected some of 1..5")
        # canonical order: a draw must not depend on the order the types were listed in
        object.__setattr__(self, "types", tuple(t for t in CORRUPTIONS if t in self.types))
        object.__setattr__(self, "severities", tuple(sorted(set(self.severities))))

    def draw(self, key: str) -> tuple[str, int]:
        rng = np.random.default_rng(_words("draw", self.seed, key))
        name = self.types[int(rng.integers(len(self.types)))]
        return name, self.severities[int(rng.integers(len(self.severities)))]

    def noise_seed(self, key: str, name: str, severity: int) -> int:
        return _words("noise", self.seed, key, name, severity)[0]

    def to_json(self) -> dict:
        return {"types": list(self.types), "severities": list(self.severities), "seed": self.seed}
