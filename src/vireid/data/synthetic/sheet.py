"""Contact sheet of the synthetic factors: the same people under each factor setting.

Rows: one identity per row-pair (visible cameras, then infrared), columns: the front, back
and side views, for each value of the factor being shown. Used by ``vireid synth --sheet``
and for the picture in docs/synthetic.md.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .identity import sample_camera, sample_identity
from .render import Canvas, render, sample_pose
from .spec import SynthSpec


def _strip(spec: SynthSpec, pid: int, canvas: Canvas) -> np.ndarray:
    """(2H, 3W, 3): row 1 visible, row 2 infrared; columns front, back, side."""
    ident = sample_identity(pid, np.random.default_rng([spec.seed, 3, pid]), spec)
    rows = []
    for camid, infrared in ((1, False), (3, True)):
        cam = sample_camera(camid, infrared, np.random.default_rng([spec.seed, 1, camid]), spec)
        row = []
        for v in range(3):
            r = np.random.default_rng([spec.seed, 8, pid, v])
            row.append(render(canvas, ident, cam, sample_pose(r, np.eye(3)[v], cam, 0.2), r))
        rows.append(np.concatenate(row, 1))
    return np.concatenate(rows, 0)


def contact_sheet(
    path: str | Path,
    spec: SynthSpec,
    factor: str | None = None,
    values: tuple[float, ...] = (0.0, 0.5, 1.0),
    people: int = 4,
) -> Path:
    """Write a PNG: ``people`` identities at each ``values`` of ``factor`` (or just ``spec``)."""
    canvas = Canvas(spec.height, spec.width)
    settings = [spec] if factor is None else [replace(spec, **{factor: v}) for v in values]
    blocks = []
    for s in settings:
        column = np.concatenate([_strip(s, pid, canvas) for pid in range(people)], 0)
        blocks.append(np.pad(column, ((22, 0), (4, 4), (0, 0)), constant_values=255))
    img = Image.fromarray(np.concatenate(blocks, 1))
    draw = ImageDraw.Draw(img)
    block_w = 3 * spec.width + 8
    for i, s in enumerate(settings):
        label = f"{factor} = {getattr(s, factor):g}" if factor else "front / back / side"
        draw.text((i * block_w + 6, 5), label, fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
