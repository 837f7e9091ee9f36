"""The pretraining population: synthetic people seen by colour cameras only.

A stand-in for ImageNet, which every VI-ReID recipe starts from: a population whose
identities are disjoint from any benchmark's (drawn from another seed stream), photographed
by many visible cameras (ImageNet holds no infrared images), rendered straight into memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.synthetic.identity import sample_camera, sample_identity
from ..data.synthetic.render import Canvas, render, sample_pose, view_mix
from ..data.synthetic.spec import SynthSpec

# Benchmark datasets draw identities from seed streams [seed, 3, pid]; the population uses
# [POPULATION_STREAM, seed, pid], which no benchmark seed reaches.
POPULATION_STREAM = 7_340_033


def render_population(
    spec: SynthSpec,
    images_per_id: int,
    cameras: int = 8,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``spec.ids`` identities × ``images_per_id`` visible images.

    Returns images (N, H, W, 3) uint8 and labels (N,) int64 in 0..ids-1. Memory:
    N · H · W · 3 bytes (4,800 images at 128×64: 118 MB).
    """
    canvas = Canvas(spec.height, spec.width)
    rng = np.random.default_rng([POPULATION_STREAM, spec.seed])
    cams = [
        sample_camera(c, False, np.random.default_rng([POPULATION_STREAM, spec.seed, 1, c]), spec)
        for c in range(cameras)
    ]
    images = np.empty((spec.ids * images_per_id, spec.height, spec.width, 3), np.uint8)
    labels = np.repeat(np.arange(spec.ids), images_per_id)
    for pid in range(spec.ids):
        ident = sample_identity(
            pid, np.random.default_rng([POPULATION_STREAM, spec.seed, 3, pid]), spec
        )
        seen = rng.choice(cameras, size=min(3, cameras), replace=False)
        mixes = [view_mix(cams[c], rng) for c in seen]
        for k in range(images_per_id):
            j = k % len(seen)
            r = np.random.default_rng([POPULATION_STREAM, spec.seed, 4, pid, k])
            pose = sample_pose(r, mixes[j], cams[seen[j]], spec.difficulty)
            images[pid * images_per_id + k] = render(canvas, ident, cams[seen[j]], pose, r)
        if progress:
            progress(1)
    return images, labels
