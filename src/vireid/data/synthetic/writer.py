"""Write a complete synthetic dataset in an official on-disk layout.

``write_sysu`` produces ``cam1..cam6/<pid:04d>/<frame:04d>.jpg`` and ``exp/*_id.txt``;
``write_regdb`` produces ``Visible/``, ``Thermal/`` (aligned pairs) and the ten trials of
``idx/`` files. The real readers and protocols then run on them unchanged. Every image is
drawn from its own seed (dataset seed, pid, camera, frame), so output is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from .identity import Camera, sample_camera, sample_identity
from .render import Canvas, render, sample_pose, view_mix
from .spec import SynthSpec

SYSU_CAMS = {1: False, 2: False, 3: True, 4: False, 5: False, 6: True}  # camid → infrared


def _rng(spec: SynthSpec, *key: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, *key])


def _cameras(spec: SynthSpec, cams: dict[int, bool]) -> dict[int, Camera]:
    out = {cid: sample_camera(cid, ir, _rng(spec, 1, cid), spec) for cid, ir in cams.items()}
    if 2 in out and 3 in out:
        # cam3 (IR) shares cam2's room: same geometry of the background
        c2 = out[2]
        out[3] = replace(
            out[3], bg_angle=c2.bg_angle, bg_freq=c2.bg_freq, bg_contrast=c2.bg_contrast
        )
    return out


def _save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jpg":
        Image.fromarray(img).save(path, quality=95)
    else:
        Image.fromarray(img).save(path)


def sysu_frames(
    spec: SynthSpec, pids: Iterable[int], gallery: Container[int] = ()
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """The images of identities ``pids`` in the SYSU-MM01 cameras, in the order
    ``write_sysu`` writes them: (pid, camid, frame, (H, W, 3) uint8 RGB). Each identity's
    draws depend only on (seed, pid), so any subset of ``pids`` renders the same images
    as the full set. ``gallery`` ids get at least ``spec.gallery_images`` frames in every
    visible camera (the test identities of a written dataset)."""
    canvas = Canvas(spec.height, spec.width)
    cams = _cameras(spec, SYSU_CAMS)
    for pid in pids:
        r = _rng(spec, 3, pid)
        ident = sample_identity(pid, r, spec)
        vis = [c for c in (1, 2, 4, 5) if r.random() < 0.75] or [int(r.choice([1, 2, 4, 5]))]
        ir = [c for c in (3, 6) if r.random() < 0.7] or [int(r.choice([3, 6]))]
        for cid in sorted(vis + ir):
            n = int(r.integers(spec.min_images, spec.max_images + 1))
            if pid in gallery and not cams[cid].infrared:
                n = max(n, spec.gallery_images)
            views = view_mix(cams[cid], _rng(spec, 7, pid, cid))
            for frame in range(1, n + 1):
                ir_ = _rng(spec, 4, pid, cid, frame)
                pose = sample_pose(ir_, views, cams[cid], spec.difficulty)
                yield pid, cid, frame, render(canvas, ident, cams[cid], pose, ir_)


def write_sysu(
    out: str | Path, spec: SynthSpec = SynthSpec(), progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """SYSU-MM01 layout. Splits ≈ 50% train, 10% val, 40% test identities."""
    out = Path(out)
    pids = list(range(1, spec.ids + 1))
    order = _rng(spec, 2).permutation(pids)
    n_test = max(2, round(spec.ids * 0.4))
    n_val = max(1, round(spec.ids * 0.1))
    test = sorted(int(p) for p in order[:n_test])
    val = sorted(int(p) for p in order[n_test : n_test + n_val])
    train = sorted(int(p) for p in order[n_test + n_val :])
    (out / "exp").mkdir(parents=True, exist_ok=True)
    for name, ids in (("train", train), ("val", val), ("test", test)):
        (out / "exp" / f"{name}_id.txt").write_text(",".join(map(str, ids)) + "\n")
    count = 0
    for pid, cid, frame, img in sysu_frames(spec, pids, gallery=set(test)):
        _save(img, out / f"cam{cid}" / f"{pid:04d}" / f"{frame:04d}.jpg")
        count += 1
        if progress:
            progress(1)
    return {
        "identities": spec.ids,
        "train_ids": len(train) + len(val),
        "test_ids": len(test),
        "images": count,
    }


def write_regdb(
    out: str | Path,
    spec: SynthSpec = SynthSpec(),
    per_id: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """RegDB layout: ``per_id`` aligned visible/thermal pairs per identity; trial t splits
    the identities in half at random (seed t) into train and test."""
    out = Path(out)
    canvas = Canvas(spec.height, spec.width)
    cams = _cameras(spec, {1: False, 2: True})
    pids = list(range(spec.ids))
    count = 0
    files: dict[int, list[tuple[str, str]]] = {}
    for pid in pids:
        r = _rng(spec, 3, pid)
        ident = sample_identity(pid, r, spec)
        sex = "male" if r.random() < 0.5 else "female"
        files[pid] = []
        views = view_mix(cams[1], _rng(spec, 7, pid))
        for k in range(per_id):
            pr = _rng(spec, 4, pid, k)
            pose = sample_pose(pr, views, cams[1], spec.difficulty)
            idx = pid * per_id + k
            pair = []
            for cid, key, tag in ((1, "Visible", "v"), (2, "Thermal", "t")):
                img = render(canvas, ident, cams[cid], pose, _rng(spec, 5, pid, k, cid))
                rel = f"{key}/{pid}/{sex}_{pose.view}_{tag}_{idx:05d}_{pid}.bmp"
                _save(img, out / rel)
                pair.append(rel)
                count += 1
                if progress:
                    progress(1)
            files[pid].append((pair[0], pair[1]))
    (out / "idx").mkdir(parents=True, exist_ok=True)
    half = spec.ids // 2
    for trial in range(1, 11):
        perm = np.random.default_rng([spec.seed, 6, trial]).permutation(pids)
        splits = {"train": sorted(perm[:half].tolist()), "test": sorted(perm[half:].tolist())}
        for split, ids in splits.items():
            for m, key in ((0, "visible"), (1, "thermal")):
                lines = [
                    f"{files[p][k][m]} {label}"
                    for label, p in enumerate(ids)
                    for k in range(per_id)
                ]
                (out / "idx" / f"{split}_{key}_{trial}.txt").write_text("\n".join(lines) + "\n")
    return {"identities": spec.ids, "train_ids": half, "test_ids": spec.ids - half, "images": count}
