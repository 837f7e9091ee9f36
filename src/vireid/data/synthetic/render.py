"""Render one synthetic person image, visible (colour) or infrared (intensity).

The person is painted as a material map (background, skin, top, bottom, hair, hat, bag,
occluder, inner shirt, shoes), a pattern map and a texture map, then shaded per modality:
the visible sensor maps materials to colours under the camera's light; the infrared sensor
maps them to intensities (bright skin, fabrics by their material's response, a dim
background) and stores a 3-channel grey image, as the SYSU-MM01 IR cameras do. Geometry —
silhouette, layout, pattern shapes, accessories — is shared by both sensors. Everything is
vectorised over the pixel grid (no per-pixel loops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .identity import MATERIALS, Camera, Fabric, Identity, Pattern

BG, SKIN, TOP, BOTTOM, HAIR, HAT, BAG, OCCLUDER, INNER, SHOES = range(10)
VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class Pose:
    """Per-image nuisance: where and how the person stands in the frame."""

    view: str
    scale: float
    dx: float
    dy: float
    stride: float
    swing: float
    occlusion: tuple[float, float, float, float] | None  # y0, y1, x0, x1 (fractions)
    blur: float
    noise: float
    light: float


def view_mix(camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """One identity's view probabilities in one camera: people walk past a camera in a
    direction, so half the mass goes to one dominant view drawn from the camera's bias."""
    bias = np.asarray(camera.view_bias)
    dominant = np.eye(3)[rng.choice(3, p=bias)]
    return 0.5 * bias + 0.5 * dominant


def sample_pose(
    rng: np.random.Generator, views: np.ndarray, camera: Camera, difficulty: float
) -> Pose:
    view = VIEWS[rng.choice(3, p=views)]
    j = 0.5 + difficulty
    occ = None
    if rng.random() < 0.35 * difficulty:
        h = rng.uniform(0.15, 0.4)
        if rng.random() < 0.5:  # something in front of the legs
            occ = (1 - h, 1.0, rng.uniform(0, 0.3), rng.uniform(0.7, 1.0))
        else:  # something at one side
            x0 = rng.choice([0.0, rng.uniform(0.55, 0.75)])
            occ = (rng.uniform(0.2, 0.5), 1.0, x0, x0 + rng.uniform(0.25, 0.45))
    return Pose(
        view=view,
        scale=float(rng.uniform(1 - 0.08 * j, 1 + 0.04 * j) * camera.distance),
        dx=float(rng.normal(0, 0.04 * j)),
        dy=float(rng.normal(0, 0.02 * j)),
        stride=float(rng.uniform(0.0, 0.08)),
        swing=float(rng.uniform(-0.06, 0.06)),
        occlusion=occ,
        blur=float(rng.uniform(0, 0.3 + 0.8 * difficulty) + camera.blur),
        noise=float(0.01 + 0.04 * difficulty * rng.random() + camera.noise),
        light=float(rng.uniform(1 - 0.3 * difficulty, 1 + 0.2 * difficulty)),
    )


def _pattern_map(p: Pattern, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if p.kind == "plain":
        return np.zeros_like(u)
    if p.kind == "hstripes":
        return (np.sin(2 * np.pi * (v * p.freq + p.phase)) > 0).astype(np.float32)
    if p.kind == "vstripes":
        return (np.sin(2 * np.pi * (u * p.freq + p.phase)) > 0).astype(np.float32)
    if p.kind == "checker":
        a = np.sin(2 * np.pi * (u * p.freq * 0.7 + p.phase)) > 0
        b = np.sin(2 * np.pi * (v * p.freq * 0.7)) > 0
        return (a ^ b).astype(np.float32)
    if p.kind == "diagonal":
        return (np.sin(2 * np.pi * ((u + v) * p.freq + p.phase)) > 0).astype(np.float32)
    v0, v1, u0, u1 = p.box
    if p.kind == "logo":
        return ((v >= v0) & (v < v1) & (u >= u0) & (u < u1)).astype(np.float32)
    return (v >= 0.5).astype(np.float32)  # "split": two-tone garment


def _texture(material: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Multiplicative fabric texture in [-1, 1] (scaled by the shader)."""
    m = MATERIALS[material]
    f = m.texture_freq
    if m.texture == "weave":
        return np.sin(2 * np.pi * f * (u + 2 * v))
    if m.texture == "grain":
        return np.sin(2 * np.pi * f * 3.7 * u) * np.sin(2 * np.pi * f * 5.3 * v)
    if m.texture == "sheen":
        return np.cos(np.pi * (u - 0.3) * f)
    return np.zeros_like(u)


class Canvas:
    """Pixel grid in frame fractions, reused for every image of one size."""

    def __init__(self, height: int, width: int) -> None:
        self.h, self.w = height, width
        ys = (np.arange(height, dtype=np.float32) + 0.5) / height
        xs = (np.arange(width, dtype=np.float32) + 0.5) / width
        self.y, self.x = np.meshgrid(ys, xs, indexing="ij")
        self.aspect = width / height  # x fractions → y units


def _box(c: Canvas, y0, y1, x0, x1) -> np.ndarray:
    return (c.y >= y0) & (c.y < y1) & (c.x >= x0) & (c.x < x1)


def _ellipse(c: Canvas, cy, cx, ry, rx) -> np.ndarray:
    return ((c.y - cy) / ry) ** 2 + ((c.x - cx) / rx) ** 2 <= 1.0


@dataclass
class Painted:
    mat: np.ndarray  # (H, W) uint8 material index
    pat: np.ndarray  # (H, W) float32, 1 where the garment shows its accent fabric
    tex: np.ndarray  # (H, W) float32 texture in [-1, 1]


def paint(c: Canvas, ident: Identity, pose: Pose) -> Painted:
    mat = np.zeros((c.h, c.w), np.uint8)
    pat = np.zeros((c.h, c.w), np.float32)
    tex = np.zeros((c.h, c.w), np.float32)
    view = pose.view
    side, back, front = view == "side", view == "back", view == "front"
    H = ident.height * pose.scale
    top_y = 1.0 - H - 0.02 + pose.dy
    cx = 0.5 + pose.dx
    # Widths are fractions of the frame *width*; the frame is twice as tall as wide.
    half = ident.build * H / c.aspect / 2 * (0.6 if side else 1.0)
    head_r = ident.head * H
    neck = top_y + 2 * head_r
    hip = 1.0 - ident.leg_ratio * H - 0.02 + pose.dy
    foot = 1.0 - 0.02 + pose.dy

    # legs and shoes
    leg_w = half * 0.42
    for sgn in (-1, 1):
        lx = cx + sgn * pose.stride * 0.6 if side else cx + sgn * (half * 0.45 + pose.stride / 2)
        m = _box(c, hip, foot, lx - leg_w, lx + leg_w)
        mat[m] = BOTTOM
        if ident.shorts:
            mat[m & (c.y > hip + (foot - hip) * 0.45)] = SKIN
        mat[m & (c.y > foot - 0.035 * H)] = SHOES
    # torso (+ the inner shirt of an open jacket, seen from the front)
    torso = _box(c, neck, hip + 0.03, cx - half, cx + half)
    mat[torso] = TOP
    if front and ident.inner is not None:
        mat[torso & (np.abs(c.x - cx) < half * 0.3)] = INNER
    u = (c.x - (cx - half)) / (2 * half)
    v = (c.y - neck) / max(hip + 0.03 - neck, 1e-3)
    garment = ident.top.back if back else ident.top.front
    pat_top = (v > 0.8).astype(np.float32) if side else _pattern_map(garment, u, v)
    top_m = mat == TOP
    pat[top_m] = pat_top[top_m]
    tex[top_m] = _texture(ident.top.material, u, v)[top_m]
    bottom = mat == BOTTOM
    vb = (c.y - hip) / max(foot - hip, 1e-3)
    pat_b = _pattern_map(ident.bottom.back if back else ident.bottom.front, u, vb)
    pat[bottom] = pat_b[bottom]
    tex[bottom] = _texture(ident.bottom.material, u, vb)[bottom]
    # arms
    arm_w = half * 0.28
    arm_len = (hip - neck) * 1.05
    for sgn in (1,) if side else (-1, 1):
        ax = cx + pose.swing if side else cx + sgn * (half + arm_w)
        ay0 = neck + 0.01
        m = _box(c, ay0, ay0 + arm_len, ax - arm_w, ax + arm_w)
        mat[m] = TOP
        mat[m & (c.y > ay0 + arm_len * (0.45 if ident.short_sleeves else 0.92))] = SKIN
    _paint_head(c, mat, ident, view, top_y, cx, head_r)
    _paint_bag(c, mat, ident, view, cx, half, arm_w, neck, hip, ay0 + arm_len)
    if pose.occlusion is not None:
        y0, y1, x0, x1 = pose.occlusion
        mat[_box(c, y0, y1, x0, x1)] = OCCLUDER
    return Painted(mat, pat, tex)


def _paint_head(c: Canvas, mat, ident: Identity, view: str, top_y, cx, head_r) -> None:
    hy = top_y + head_r
    rx = head_r / c.aspect * 0.85
    head = _ellipse(c, hy, cx, head_r, rx)
    mat[head] = SKIN
    style = ident.hair_style
    cut = {"short": 0.2, "long": 0.1, "ponytail": 0.2, "buzz": 0.6}[style]
    if view == "back":
        mat[head & (c.y < hy + head_r * (0.9 if style != "buzz" else 0.3))] = HAIR
    else:
        mat[head & (c.y < hy - head_r * cut)] = HAIR
    if style == "long":  # falls to the shoulders: beside the face, over the upper back
        drop = _box(c, hy - head_r * 0.2, hy + head_r * 2.6, cx - rx * 1.05, cx + rx * 1.05)
        mat[drop & ~head if view == "front" else drop] = HAIR
    elif style == "ponytail" and view != "front":
        tx = cx if view == "back" else cx - rx * 0.9
        mat[_box(c, hy, hy + head_r * 2.4, tx - rx * 0.3, tx + rx * 0.3)] = HAIR
    if ident.hat_style == "cap":
        mat[_box(c, top_y - head_r * 0.3, top_y + head_r * 0.6, cx - rx * 1.1, cx + rx * 1.1)] = HAT
        if view != "back":  # the brim
            b0 = cx - rx * 1.6 if view == "front" else cx
            mat[_box(c, top_y + head_r * 0.45, top_y + head_r * 0.7, b0, cx + rx * 1.6)] = HAT
    elif ident.hat_style == "beanie":
        mat[head & (c.y < hy - head_r * 0.1)] = HAT


def _paint_bag(c: Canvas, mat, ident: Identity, view, cx, half, arm_w, neck, hip, hand) -> None:
    kind, side = ident.bag_kind, view == "side"
    if kind == "backpack":
        if view == "back":  # covers most of the back
            mat[_box(c, neck + 0.02, hip - 0.03, cx - half * 0.8, cx + half * 0.8)] = BAG
        elif view == "front":  # only the straps
            for sgn in (-1, 1):
                x = cx + sgn * half * 0.55
                mat[_box(c, neck, neck + (hip - neck) * 0.6, x - half * 0.1, x + half * 0.1)] = BAG
        else:  # behind the torso
            mat[_box(c, neck + 0.02, hip - 0.05, cx - half * 2.0, cx - half * 0.9)] = BAG
        return
    if kind == "none" or (side and ident.bag_side != 1):
        return
    # the person's own side appears mirrored between front and back views
    s = ident.bag_side * (-1 if view == "front" else 1)
    if kind == "shoulder":
        bx = cx - half * 1.2 if side else cx + s * (half + arm_w * 1.5)
        mat[_box(c, hip - 0.12, hip + 0.06, bx - half * 0.45, bx + half * 0.45)] = BAG
    else:  # handbag, hanging from the hand
        bx = cx if side else cx + s * (half + arm_w)
        mat[_box(c, hand - 0.01, hand + 0.07, bx - half * 0.3, bx + half * 0.3)] = BAG


def _background(c: Canvas, cam: Camera) -> np.ndarray:
    t = c.x * np.cos(cam.bg_angle) + c.y * np.sin(cam.bg_angle)
    return 0.5 + 0.5 * cam.bg_contrast * np.sin(2 * np.pi * cam.bg_freq * t)  # (H, W)


def _fabrics(ident: Identity) -> list[Fabric | None]:
    """Fabric per material index; None for background and occluder (drawn per image)."""
    return [
        None,
        ident.skin,
        ident.top.main,
        ident.bottom.main,
        ident.hair,
        ident.hat,
        ident.bag,
        None,
        ident.inner or ident.top.main,
        ident.shoes,
    ]


def shade_visible(c: Canvas, p: Painted, ident: Identity, cam: Camera, pose: Pose, rng):
    g = _background(c, cam)[..., None]
    bg = cam.bg_color * (1 - g) + cam.bg_color2 * g
    occluder = rng.uniform(0.1, 0.7, 3).astype(np.float32)
    table = np.stack([f.color if f is not None else occluder for f in _fabrics(ident)]).astype(
        np.float32
    )
    img = table[p.mat]
    alt = np.where((p.mat == TOP)[..., None], ident.top.accent.color, ident.bottom.accent.color)
    a = p.pat[..., None]
    img = img * (1 - a) + alt * a
    img = img * (1 + 0.1 * p.tex[..., None])
    img = np.where((p.mat == BG)[..., None], bg, img)
    # cylinder shading across the body, then the camera's light
    shade = 0.85 + 0.15 * np.cos((c.x - 0.5) * np.pi)
    return img * shade[..., None] * cam.light_tint * cam.light_gain * pose.light


def shade_infrared(c: Canvas, p: Painted, ident: Identity, cam: Camera, pose: Pose, rng):
    occluder = float(rng.uniform(0.1, 0.4))
    table = np.array([f.ir if f is not None else occluder for f in _fabrics(ident)], np.float32)
    t = table[p.mat]
    alt = np.where(p.mat == TOP, ident.top.accent.ir, ident.bottom.accent.ir)
    clothed = (p.mat == TOP) | (p.mat == BOTTOM)
    t = np.where(clothed, t * (1 - p.pat) + alt * p.pat, t)
    t = t * (1 + 0.06 * p.tex)
    g = _background(c, cam)
    scene = cam.bg_color * (1 - g[..., None]) + cam.bg_color2 * g[..., None]
    grey = (scene @ np.array(MATERIALS[0].weights, np.float32)) * cam.light_gain
    bg = (1 - cam.gap) * grey + cam.gap * cam.bg_temp * (1 + 0.6 * (g - 0.5))
    t = np.where(p.mat == BG, bg, t)
    t = t * (0.9 + 0.1 * pose.light) * (0.85 + 0.15 * cam.light_gain)
    return np.repeat(t[..., None], 3, axis=2)


def render(
    c: Canvas, ident: Identity, cam: Camera, pose: Pose, rng: np.random.Generator
) -> np.ndarray:
    """(H, W, 3) uint8 image of ``ident`` seen by ``cam`` in ``pose``."""
    painted = paint(c, ident, pose)
    shade = shade_infrared if cam.infrared else shade_visible
    img = shade(c, painted, ident, cam, pose, rng)
    if pose.blur > 0.05:
        img = gaussian_filter(img, sigma=(pose.blur, pose.blur, 0), mode="nearest")
    if cam.infrared:
        img = img + rng.normal(0, pose.noise * 1.6, img.shape[:2])[..., None]
    else:
        img = img + rng.normal(0, pose.noise, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
