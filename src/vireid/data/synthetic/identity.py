"""Persistent, randomly drawn attributes of a synthetic person and of a synthetic camera.

An identity fixes everything that should survive a change of camera or modality: body
shape, garments (colour for the visible sensor, emissivity for the thermal one), patterns
that differ between the front and the back, accessories and skin exposure. Colour and
emissivity are drawn independently, so colour carries no information across modalities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERNS = ("plain", "hstripes", "vstripes", "checker", "logo", "diagonal", "split")


@dataclass(frozen=True)
class Pattern:
    kind: str
    freq: float  # stripes / checks per garment
    phase: float
    box: tuple[float, float, float, float]  # logo/split box in garment coords (v0, v1, u0, u1)


@dataclass(frozen=True)
class Garment:
    color: np.ndarray  # (3,) RGB in [0, 1]
    color2: np.ndarray  # pattern colour
    emissivity: float  # thermal brightness of the fabric
    emissivity2: float  # thermal brightness of the pattern fabric
    front: Pattern
    back: Pattern


@dataclass(frozen=True)
class Identity:
    pid: int
    height: float  # fraction of the frame height
    build: float  # shoulder width / height
    head: float  # head radius / height
    leg_ratio: float  # legs / height
    skin: np.ndarray
    hair: np.ndarray
    top: Garment
    bottom: Garment
    short_sleeves: bool
    shorts: bool
    hat: np.ndarray | None  # colour, or None
    bag_side: int  # -1 left, +1 right (person's own side), 0 none
    bag_color: np.ndarray
    bag_emissivity: float
    body_temp: float  # individual thermal offset


@dataclass(frozen=True)
class Camera:
    camid: int
    infrared: bool
    bg_color: np.ndarray
    bg_color2: np.ndarray
    bg_angle: float
    bg_freq: float
    light_gain: float
    light_tint: np.ndarray
    bg_temp: float
    view_bias: tuple[float, float, float]  # P(front), P(back), P(side)


def _palette_color(rng: np.random.Generator, levels: int) -> np.ndarray:
    # Quantised hue/saturation/value: harder difficulty = fewer distinct colours.
    h = rng.integers(levels) / levels
    s = 0.25 + 0.7 * rng.integers(levels) / max(levels - 1, 1)
    v = 0.25 + 0.7 * rng.integers(levels) / max(levels - 1, 1)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


def _pattern(rng: np.random.Generator) -> Pattern:
    kind = PATTERNS[rng.integers(len(PATTERNS))]
    v0 = rng.uniform(0.15, 0.45)
    u0 = rng.uniform(0.15, 0.45)
    box = (v0, v0 + rng.uniform(0.2, 0.45), u0, u0 + rng.uniform(0.2, 0.45))
    return Pattern(kind, float(rng.uniform(2.0, 5.0)), float(rng.uniform(0, 1)), box)


def _garment(rng: np.random.Generator, levels: int, emis_levels: int) -> Garment:
    front = _pattern(rng)
    back = _pattern(rng)
    while back.kind == front.kind and front.kind != "plain":
        back = _pattern(rng)
    e = 0.35 + 0.45 * rng.integers(emis_levels) / max(emis_levels - 1, 1)
    e2 = float(np.clip(e + rng.choice([-1, 1]) * rng.uniform(0.15, 0.3), 0.15, 0.9))
    return Garment(
        _palette_color(rng, levels), _palette_color(rng, levels), float(e), e2, front, back
    )


def sample_identity(pid: int, rng: np.random.Generator, difficulty: float) -> Identity:
    levels = max(3, round(8 - 4 * difficulty))
    emis_levels = max(3, round(7 - 3 * difficulty))
    tone = rng.uniform(0.35, 0.95)
    return Identity(
        pid=pid,
        height=float(rng.uniform(0.78, 0.95)),
        build=float(rng.uniform(0.22, 0.36)),
        head=float(rng.uniform(0.055, 0.075)),
        leg_ratio=float(rng.uniform(0.42, 0.52)),
        skin=np.array([tone, tone * 0.78, tone * 0.62], np.float32),
        hair=_palette_color(rng, 4) * 0.4,
        top=_garment(rng, levels, emis_levels),
        bottom=_garment(rng, levels, emis_levels),
        short_sleeves=bool(rng.random() < 0.4),
        shorts=bool(rng.random() < 0.3),
        hat=_palette_color(rng, levels) if rng.random() < 0.25 else None,
        bag_side=int(rng.choice([-1, 0, 0, 1])),
        bag_color=_palette_color(rng, levels),
        bag_emissivity=float(rng.uniform(0.1, 0.3)),
        body_temp=float(rng.uniform(-0.05, 0.05)),
    )


def sample_camera(camid: int, infrared: bool, rng: np.random.Generator) -> Camera:
    bias = rng.dirichlet([2.0, 2.0, 1.0])
    return Camera(
        camid=camid,
        infrared=infrared,
        bg_color=rng.uniform(0.2, 0.8, 3).astype(np.float32),
        bg_color2=rng.uniform(0.2, 0.8, 3).astype(np.float32),
        bg_angle=float(rng.uniform(0, np.pi)),
        bg_freq=float(rng.uniform(0.5, 3.0)),
        light_gain=float(rng.uniform(0.7, 1.2)),
        light_tint=rng.uniform(0.85, 1.15, 3).astype(np.float32),
        bg_temp=float(rng.uniform(0.08, 0.3)),
        view_bias=(float(bias[0]), float(bias[1]), float(bias[2])),
    )
