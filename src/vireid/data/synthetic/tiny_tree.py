"""Small synthetic datasets in the official layouts, for smoke runs of shipped recipes.

``small`` (``vireid train RECIPE --smoke --synthetic``): every shipped recipe's
pseudo-label stage runs as configured on it: each modality of the training set holds more
images than the largest per-modality k-reciprocal list (k1 30) and both together more than
the largest joint one (ECUL's k3 80), and at least 12 training identities carry both
modalities (the supervised sampler's 8 per batch, plus slack). ``tiny`` (the CI test over
every recipe): the fewest images that keep 8+ identities in both modalities; neighbour lists
longer than a modality are clamped by the clustering, as on any small dataset.

Written once per (layout, size, resolution) under a file lock (parallel test workers), the
marker file last, so a half-written tree is never reused.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from .spec import SynthSpec
from .writer import write_regdb, write_sysu
from .writer_llcm import write_llcm

LAYOUTS = {"sysu_mm01": "sysu", "regdb": "regdb", "llcm": "llcm"}
DONE = ".vireid_tiny_tree"
# (identities, min images, max images) per (camera or RegDB pair) for each size
SIZES = {
    "small": {"sysu": (24, 6, 9), "regdb": (24, 10, 10), "llcm": (24, 4, 6)},
    "tiny": {"sysu": (16, 2, 3), "regdb": (18, 3, 3), "llcm": (18, 1, 2)},
}


def write_tiny_tree(
    dataset: str, height: int, width: int, root: str | Path, size: str = "small"
) -> Path:
    """The tree for ``dataset`` (a ``data.dataset.name``) at ``height`` × ``width`` under
    ``root/<layout>-<size>-<H>x<W>``; returns its path."""
    if dataset not in LAYOUTS:
        raise ValueError(
            f"no synthetic layout for data.dataset.name={dataset}; expected one of "
            f"{', '.join(LAYOUTS)} (pass --root DIR with your data instead)"
        )
    layout = LAYOUTS[dataset]
    out = Path(root) / f"{layout}-{size}-{height}x{width}"
    if (out / DONE).is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be writing the same tree
        if (out / DONE).is_file():
            return out
        ids, lo, hi = SIZES[size][layout]
        spec = SynthSpec(ids=ids, height=height, width=width, min_images=lo, max_images=hi)
        if layout == "sysu":
            write_sysu(out, spec)
        elif layout == "regdb":
            write_regdb(out, spec, per_id=hi)
        else:
            write_llcm(out, spec)
        (out / DONE).write_text(f"{dataset} {size} {height}x{width}\n")
    return out
