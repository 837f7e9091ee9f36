"""Render one synthetic person image, visible (colour) or infrared (temperature).

The person is painted as a material map (background, skin, top, bottom, hair, hat, bag,
occluder) plus a pattern map, then shaded per modality: the visible sensor maps materials
to colours under the camera's light; the thermal sensor maps them to temperatures (warm
skin, garments by emissivity, cool background) and stores a 3-channel grey image, as the
SYSU-MM01 IR cameras do. Everything is vectorised over the pixel grid (no per-pixel loops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .identity import Camera, Identity, Pattern

BG, SKIN, TOP, BOTTOM, HAIR, HAT, BAG, OCCLUDER = range(8)
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


def sample_pose(rng: np.random.Generator, camera: Camera, difficulty: float) -> Pose:
    view = VIEWS[rng.choice(3, p=camera.view_bias)]
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
        scale=float(rng.uniform(1 - 0.08 * j, 1 + 0.04 * j)),
        dx=float(rng.normal(0, 0.04 * j)),
        dy=float(rng.normal(0, 0.02 * j)),
        stride=float(rng.uniform(0.0, 0.08)),
        swing=float(rng.uniform(-0.06, 0.06)),
        occlusion=occ,
        blur=float(rng.uniform(0, 0.4 + 1.0 * difficulty)),
        noise=float(0.015 + 0.05 * difficulty * rng.random()),
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


def paint(c: Canvas, ident: Identity, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Material map (H, W) uint8 and pattern map (H, W) float32."""
    mat = np.zeros((c.h, c.w), np.uint8)
    pat = np.zeros((c.h, c.w), np.float32)
    H = ident.height * pose.scale
    top_y = 1.0 - H - 0.02 + pose.dy
    cx = 0.5 + pose.dx
    side = pose.view == "side"
    # Widths are fractions of the frame *width*; the frame is twice as tall as wide.
    half = ident.build * H / c.aspect / 2 * (0.6 if side else 1.0)
    head_r = ident.head * H
    neck = top_y + 2 * head_r
    hip = 1.0 - ident.leg_ratio * H - 0.02 + pose.dy
    foot = 1.0 - 0.02 + pose.dy

    # legs
    leg_w = half * 0.42
    for sgn in (-1, 1):
        lx = cx + sgn * (half * 0.45 + pose.stride * (0 if side else 0.5) * sgn)
        if side:
            lx = cx + sgn * pose.stride * 0.6
        m = _box(c, hip, foot, lx - leg_w, lx + leg_w)
        mat[m] = BOTTOM
        if ident.shorts:
            mat[m & (c.y > hip + (foot - hip) * 0.45)] = SKIN
    # torso
    torso = _box(c, neck, hip + 0.03, cx - half, cx + half)
    mat[torso] = TOP
    u = (c.x - (cx - half)) / (2 * half)
    v = (c.y - neck) / max(hip + 0.03 - neck, 1e-3)
    garment = ident.top.back if pose.view == "back" else ident.top.front
    pat_top = _pattern_map(garment, u, v) if not side else (v > 0.8).astype(np.float32)
    pat[torso] = pat_top[torso]
    bottom = mat == BOTTOM
    pat_b = _pattern_map(
        ident.bottom.back if pose.view == "back" else ident.bottom.front,
        u,
        (c.y - hip) / max(foot - hip, 1e-3),
    )
    pat[bottom] = pat_b[bottom]
    # arms
    arm_w = half * 0.28
    arm_len = (hip - neck) * 1.05
    for sgn in (-1, 1) if not side else (1,):
        ax = cx + sgn * (half + arm_w) if not side else cx + pose.swing
        ay0 = neck + 0.01
        m = _box(c, ay0, ay0 + arm_len, ax - arm_w, ax + arm_w)
        mat[m] = TOP
        lower = m & (c.y > ay0 + arm_len * (0.45 if ident.short_sleeves else 0.92))
        mat[lower] = SKIN
    # head, hair, hat
    hy = top_y + head_r
    head = _ellipse(c, hy, cx, head_r, head_r / c.aspect * 0.85)
    mat[head] = SKIN
    hair = head & (c.y < hy - head_r * (0.2 if pose.view != "back" else -0.6))
    mat[hair] = HAIR
    if ident.hat is not None:
        mat[
            _box(
                c,
                top_y - head_r * 0.3,
                top_y + head_r * 0.7,
                cx - head_r / c.aspect * 1.1,
                cx + head_r / c.aspect * 1.1,
            )
        ] = HAT
    # bag: the person's own side appears mirrored between front and back views
    if ident.bag_side != 0 and (not side or ident.bag_side == 1):
        s = ident.bag_side * (-1 if pose.view == "front" else 1)
        bx = cx + s * (half + arm_w * 1.5) if not side else cx - half * 1.2
        mat[_box(c, hip - 0.12, hip + 0.06, bx - half * 0.45, bx + half * 0.45)] = BAG
    if pose.occlusion is not None:
        y0, y1, x0, x1 = pose.occlusion
        mat[_box(c, y0, y1, x0, x1)] = OCCLUDER
    return mat, pat


def _background(c: Canvas, cam: Camera) -> np.ndarray:
    t = c.x * np.cos(cam.bg_angle) + c.y * np.sin(cam.bg_angle)
    return 0.5 + 0.5 * np.sin(2 * np.pi * cam.bg_freq * t)  # (H, W) in [0, 1]


def shade_visible(
    c: Canvas, mat, pat, ident: Identity, cam: Camera, pose: Pose, rng: np.random.Generator
) -> np.ndarray:
    g = _background(c, cam)[..., None]
    bg = cam.bg_color * (1 - g) + cam.bg_color2 * g
    table = np.stack(
        [
            np.zeros(3, np.float32),
            ident.skin,
            ident.top.color,
            ident.bottom.color,
            ident.hair,
            ident.hat if ident.hat is not None else np.zeros(3, np.float32),
            ident.bag_color,
            rng.uniform(0.1, 0.7, 3).astype(np.float32),
        ]
    )
    img = table[mat]
    alt = np.where((mat == TOP)[..., None], ident.top.color2, ident.bottom.color2)
    p = pat[..., None]
    img = img * (1 - p) + alt * p
    img = np.where((mat == BG)[..., None], bg, img)
    # cylinder shading across the body, then the camera's light
    shade = 0.85 + 0.15 * np.cos((c.x - 0.5) * np.pi)
    img = img * shade[..., None] * cam.light_tint * cam.light_gain * pose.light
    return img


def shade_infrared(
    c: Canvas, mat, pat, ident: Identity, cam: Camera, pose: Pose, rng: np.random.Generator
) -> np.ndarray:
    body = 0.95 + ident.body_temp
    table = np.array(
        [
            0.0,
            body,
            ident.top.emissivity * body,
            ident.bottom.emissivity * body,
            0.55 * body,
            0.3,
            ident.bag_emissivity,
            rng.uniform(0.1, 0.4),
        ],
        np.float32,
    )
    t = table[mat]
    alt = np.where(mat == TOP, ident.top.emissivity2, ident.bottom.emissivity2) * body
    clothed = (mat == TOP) | (mat == BOTTOM)
    t = np.where(clothed, t * (1 - pat) + alt * pat, t)
    bg = cam.bg_temp * (0.7 + 0.3 * _background(c, cam))
    t = np.where(mat == BG, bg, t)
    t = t * (0.9 + 0.1 * pose.light)
    return np.repeat(t[..., None], 3, axis=2)


def render(
    c: Canvas, ident: Identity, cam: Camera, pose: Pose, rng: np.random.Generator
) -> np.ndarray:
    """(H, W, 3) uint8 image of ``ident`` seen by ``cam`` in ``pose``."""
    mat, pat = paint(c, ident, pose)
    shade = shade_infrared if cam.infrared else shade_visible
    img = shade(c, mat, pat, ident, cam, pose, rng)
    if pose.blur > 0.05:
        img = gaussian_filter(img, sigma=(pose.blur, pose.blur, 0), mode="nearest")
    noise = rng.normal(0, pose.noise * (1.6 if cam.infrared else 1.0), img.shape[:2])
    img = img + (noise[..., None] if cam.infrared else rng.normal(0, pose.noise, img.shape))
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
