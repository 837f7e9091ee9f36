"""Persistent, randomly drawn attributes of a synthetic person and of a synthetic camera.

An identity fixes what survives a change of camera or modality: body build and height,
hair and hat silhouettes, garment layout and pattern geometry (different on the front and
the back when ``view_diversity`` says so), accessories, and for every fabric a material
whose infrared intensity relates to its colour through a material-specific response
(``infrared_intensity``), except for a fraction ``modality_gap`` of the fabrics, whose
infrared look is drawn independently of their colour.

Random draws happen in a fixed order whatever the factors, so one seed gives the same
people under every factor setting: a sweep of one factor changes only what it names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import SynthSpec

PATTERNS = ("plain", "hstripes", "vstripes", "checker", "logo", "diagonal", "split")
HAIR_STYLES = ("short", "long", "ponytail", "buzz")
HAT_STYLES = ("none", "cap", "beanie")
BAG_KINDS = ("none", "backpack", "shoulder", "handbag")


@dataclass(frozen=True)
class Material:
    """Infrared response = base + gain · (weights · rgb), the weights a material-specific
    tilt of the luminance weights; texture = a fine periodic
    modulation visible to both sensors (weave, grain), so the material — and with it the
    colour → infrared relation — can be read off an image."""

    name: str
    ir_base: float
    ir_gain: float
    weights: tuple[float, float, float]
    texture: str  # none | weave | grain | sheen
    texture_freq: float


MATERIALS = (
    Material("cotton", 0.00, 1.00, (0.30, 0.59, 0.11), "none", 0.0),
    Material("denim", 0.08, 0.85, (0.15, 0.45, 0.40), "weave", 9.0),
    Material("wool", 0.12, 0.80, (0.35, 0.55, 0.10), "grain", 14.0),
    Material("polyester", 0.05, 1.05, (0.55, 0.35, 0.10), "sheen", 1.0),
    Material("leather", 0.02, 0.80, (0.30, 0.59, 0.11), "sheen", 2.0),
    Material("nylon", 0.15, 0.75, (0.20, 0.65, 0.15), "weave", 6.0),
)


@dataclass(frozen=True)
class Pattern:
    kind: str
    freq: float  # stripes / checks per garment
    phase: float
    box: tuple[float, float, float, float]  # logo/split box in garment coords (v0, v1, u0, u1)


@dataclass(frozen=True)
class Fabric:
    color: np.ndarray  # (3,) RGB in [0, 1]
    ir: float  # infrared intensity in [0, 1]


@dataclass(frozen=True)
class Garment:
    material: int  # index into MATERIALS
    main: Fabric
    accent: Fabric  # the pattern's fabric
    front: Pattern
    back: Pattern


@dataclass(frozen=True)
class Identity:
    pid: int
    height: float  # fraction of the frame height
    build: float  # shoulder width / height
    head: float  # head radius / height
    leg_ratio: float  # legs / height
    skin: Fabric
    hair: Fabric
    hair_style: str
    top: Garment
    bottom: Garment
    inner: Fabric | None  # shirt seen through an open jacket, front view only
    short_sleeves: bool
    shorts: bool
    hat_style: str
    hat: Fabric
    bag_kind: str
    bag_side: int  # -1 left, +1 right (person's own side)
    bag: Fabric
    shoes: Fabric


@dataclass(frozen=True)
class Camera:
    camid: int
    infrared: bool
    bg_color: np.ndarray
    bg_color2: np.ndarray
    bg_angle: float
    bg_freq: float
    bg_contrast: float
    light_gain: float
    light_tint: np.ndarray
    bg_temp: float
    blur: float  # added to every image's blur
    noise: float  # added to every image's noise
    distance: float  # person scale multiplier
    view_bias: tuple[float, float, float]  # P(front), P(back), P(side)
    gap: float  # the dataset's modality gap: how far an IR background is from its grey scene


def palette_color(rng: np.random.Generator, levels: int) -> np.ndarray:
    # Quantised hue/saturation/value: harder difficulty = fewer distinct colours.
    h = rng.integers(levels) / levels
    s = 0.25 + 0.7 * rng.integers(levels) / max(levels - 1, 1)
    v = 0.25 + 0.7 * rng.integers(levels) / max(levels - 1, 1)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


def infrared_intensity(
    color: np.ndarray, material: Material, independent: float, surprise: float, gap: float
) -> float:
    """The material's response to the colour, except for the fabrics (a fraction ``gap``,
    decided by ``surprise`` ~ U(0, 1)) whose dye or finish makes them look unrelated in
    infrared: those take the ``independent`` draw, as some dyes are transparent to near
    infrared and some fabrics run warm or cold in thermal images."""
    if surprise < gap:
        return float(np.clip(independent, 0.05, 1.0))
    related = material.ir_base + material.ir_gain * float(np.dot(material.weights, color))
    return float(np.clip(related, 0.05, 1.0))


def _fabric(rng, levels: int, material: Material, gap: float) -> Fabric:
    color = palette_color(rng, levels)
    ir = infrared_intensity(color, material, rng.uniform(0.1, 0.95), rng.random(), gap)
    return Fabric(color, ir)


def _pattern(rng: np.random.Generator) -> Pattern:
    kind = PATTERNS[rng.integers(len(PATTERNS))]
    v0 = rng.uniform(0.15, 0.45)
    u0 = rng.uniform(0.15, 0.45)
    box = (v0, v0 + rng.uniform(0.2, 0.45), u0, u0 + rng.uniform(0.2, 0.45))
    return Pattern(kind, float(rng.uniform(2.0, 5.0)), float(rng.uniform(0, 1)), box)


def _garment(rng: np.random.Generator, levels: int, spec: SynthSpec) -> Garment:
    m = int(rng.integers(len(MATERIALS)))
    main = _fabric(rng, levels, MATERIALS[m], spec.modality_gap)
    accent = _fabric(rng, levels, MATERIALS[m], spec.modality_gap)
    front = _pattern(rng)
    other = _pattern(rng)
    while other.kind == front.kind:
        other = _pattern(rng)
    back = other if rng.random() < spec.view_diversity else front
    return Garment(m, main, accent, front, back)


def sample_identity(pid: int, rng: np.random.Generator, spec: SynthSpec) -> Identity:
    d, gap = spec.difficulty, spec.modality_gap
    levels = max(3, round(8 - 4 * d))
    tone = rng.uniform(0.35, 0.95)
    skin_color = np.array([tone, tone * 0.78, tone * 0.62], np.float32)
    body = float(0.9 + rng.uniform(-0.06, 0.06))  # skin is warm (bright) in thermal images
    skin = Fabric(skin_color, infrared_intensity(skin_color, MATERIALS[0], body, rng.random(), gap))
    hair = _fabric(rng, 4, MATERIALS[2], gap)
    hair = Fabric(hair.color * 0.45, hair.ir * 0.7)
    height = float(rng.uniform(0.76, 0.96))
    build = float(rng.uniform(0.22, 0.38))
    head = float(rng.uniform(0.055, 0.078))
    leg_ratio = float(rng.uniform(0.42, 0.53))
    hair_style = HAIR_STYLES[rng.integers(len(HAIR_STYLES))]
    top = _garment(rng, levels, spec)
    bottom = _garment(rng, levels, spec)
    inner = _fabric(rng, levels, MATERIALS[0], gap)
    open_front = rng.random() < 0.6 * spec.view_diversity
    short_sleeves = bool(rng.random() < 0.4)
    shorts = bool(rng.random() < 0.3)
    hat_style = HAT_STYLES[rng.choice(3, p=[0.7, 0.18, 0.12])]
    hat = _fabric(rng, levels, MATERIALS[5], gap)
    bag_kind = BAG_KINDS[rng.choice(4, p=[0.35, 0.25, 0.25, 0.15])]
    if bag_kind == "backpack" and rng.random() >= spec.view_diversity:
        bag_kind = "shoulder"  # low view diversity: no back-covering accessory
    bag_side = int(rng.choice([-1, 1]))
    bag = _fabric(rng, levels, MATERIALS[4], gap)
    shoes = _fabric(rng, 3, MATERIALS[4], gap)
    return Identity(
        pid=pid,
        height=height,
        build=build,
        head=head,
        leg_ratio=leg_ratio,
        skin=skin,
        hair=hair,
        hair_style=hair_style,
        top=top,
        bottom=bottom,
        inner=inner if open_front else None,
        short_sleeves=short_sleeves,
        shorts=shorts,
        hat_style=hat_style,
        hat=hat,
        bag_kind=bag_kind,
        bag_side=bag_side,
        bag=bag,
        shoes=Fabric(shoes.color * 0.5, shoes.ir * 0.6),
    )


# Typical view mixes: colour cameras see people mostly from the front, and the infrared
# cameras (``view_shift`` = 1) mostly from the back and the side.
VISIBLE_VIEWS = np.array([0.55, 0.3, 0.15])
SHIFTED_VIEWS = np.array([0.1, 0.5, 0.4])


def sample_camera(camid: int, infrared: bool, rng: np.random.Generator, spec: SynthSpec) -> Camera:
    c = spec.camera_shift
    jitter = rng.dirichlet([2.0, 2.0, 1.0])
    base = VISIBLE_VIEWS
    if infrared:
        base = (1 - spec.view_shift) * VISIBLE_VIEWS + spec.view_shift * SHIFTED_VIEWS
    bias = (1 - 0.4 * c) * base + 0.4 * c * jitter
    neutral = np.full(3, 0.5, np.float32)
    return Camera(
        camid=camid,
        infrared=infrared,
        bg_color=(neutral + c * rng.uniform(-0.3, 0.3, 3)).astype(np.float32),
        bg_color2=(neutral + c * rng.uniform(-0.3, 0.3, 3)).astype(np.float32),
        bg_angle=float(rng.uniform(0, np.pi)),
        bg_freq=float(rng.uniform(0.5, 3.0)),
        bg_contrast=float(0.2 + 0.8 * c * rng.uniform(0.3, 1.0)),
        light_gain=float(1 + c * rng.uniform(-0.3, 0.2)),
        light_tint=(1 + c * rng.uniform(-0.15, 0.15, 3)).astype(np.float32),
        bg_temp=float(0.2 + c * rng.uniform(-0.12, 0.1)),
        blur=float(c * rng.uniform(0, 0.8)),
        noise=float(c * rng.uniform(0, 0.03)),
        distance=float(1 + c * rng.uniform(-0.12, 0.04)),
        view_bias=tuple(float(x) for x in bias / bias.sum()),
        gap=spec.modality_gap,
    )
