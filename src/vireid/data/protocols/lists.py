"""Query and gallery lists in exactly the community's order and draws.

SYSU-MM01 (AGW ``process_query_sysu`` / ``process_gallery_sysu``): queries = every IR image
of the test ids, sorted id × [cam3, cam6] × sorted files, for both modes. Gallery for trial t:
``random.Random(t)`` (AGW reseeds the global module with the same stream), sorted id × camera
order × one ``choice`` (multi-shot: ``sample(files, 10)``) per *existing* (id, camera) folder.
LLCM draws the same way over its camera folders. RegDB reads the trial's idx files.
"""

from __future__ import annotations

import random
from pathlib import Path

from ..datasets import llcm, regdb, sysu_mm01
from ..datasets.base import list_images, resolve_root
from ..datasets.errors import DatasetError
from ..records import Modality, Sample
from .spec import ProtocolSpec, get_protocol

SYSU_GALLERY_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}


def draw(rng: random.Random, files: list[Path], shots: int, folder: Path) -> list[Path]:
    """One ``choice`` (single-shot) or ``sample(files, shots)``: same RNG stream as the
    community code (``sample(x, 1) == [choice(x)]`` for the same state)."""
    if shots == 1:
        return [rng.choice(files)]
    if len(files) < shots:
        raise DatasetError(f"{folder}: {len(files)} images, multi-shot needs {shots}")
    return rng.sample(files, shots)


def sysu_query(root: Path) -> list[Sample]:
    ids = sysu_mm01.read_split_ids(root, "test")
    return sysu_mm01.samples_for(root, ids, sysu_mm01.INFRARED_CAMS)


def sysu_gallery(root: Path, mode: str, trial: int, shots: int = 1) -> list[Sample]:
    rng = random.Random(trial)
    out = []
    for pid in sysu_mm01.read_split_ids(root, "test"):
        for cam in SYSU_GALLERY_CAMS[mode]:
            files = sysu_mm01.identity_images(root, cam, pid)
            if files:  # absent folders consume no draws
                folder = root / f"cam{cam}" / f"{pid:04d}"
                out += [
                    Sample(str(p), pid, cam, Modality.VISIBLE)
                    for p in draw(rng, files, shots, folder)
                ]
    return out


def _llcm_folders(root: Path, modality: Modality, ids: list[int]):
    sub = llcm.TEST_DIRS[modality]
    cams = llcm.test_cameras(root, modality)
    for pid in ids:
        for cam in cams:
            folder = root / sub / f"cam{cam}" / f"{pid:04d}"
            if folder.is_dir():
                files = list_images(folder)
                if not files:
                    raise DatasetError(f"{folder}: identity folder holds no images")
                yield pid, cam, folder, files


def llcm_all(root: Path, modality: Modality, ids: list[int]) -> list[Sample]:
    return [
        Sample(str(f), pid, cam, modality)
        for pid, cam, _, files in _llcm_folders(root, modality, ids)
        for f in files
    ]


def llcm_sampled(root: Path, modality: Modality, ids: list[int], trial: int) -> list[Sample]:
    rng = random.Random(trial)
    return [
        Sample(str(f), pid, cam, modality)
        for pid, cam, folder, files in _llcm_folders(root, modality, ids)
        for f in draw(rng, files, 1, folder)
    ]


def query_gallery(
    protocol: str | ProtocolSpec, root, trial: int, manifest=None
) -> tuple[list[Sample], list[Sample]]:
    """Query and gallery ``Sample`` lists of ``protocol`` for ``trial``, in the community's
    order. ``trial`` is a gallery seed (SYSU, LLCM: 0..9) or a split (RegDB: 1..10).
    ``manifest``: the ``folder`` protocol's CSV manifest (then ``root`` is not needed)."""
    spec = get_protocol(protocol) if isinstance(protocol, str) else protocol
    if trial not in spec.trials:
        raise DatasetError(
            f"protocol {spec.name}: trial {trial} not in {spec.trials[0]}..{spec.trials[-1]}"
        )
    if spec.dataset == "folder":
        from ..datasets.folder import load_folder_splits

        splits = load_folder_splits(root, manifest)
        return splits["query"], splits["gallery"]
    if manifest is not None:
        raise DatasetError(f"protocol {spec.name}: a manifest is only read by 'folder'")
    root = resolve_root(root, spec.dataset)
    if spec.dataset == "sysu_mm01":
        return sysu_query(root), sysu_gallery(root, spec.mode, trial, spec.shots)
    if spec.dataset == "regdb":
        vis = regdb.regdb_list(root, "test", Modality.VISIBLE, trial)
        ir = regdb.regdb_list(root, "test", Modality.INFRARED, trial)
        return (vis, ir) if spec.mode == "v2t" else (ir, vis)
    if spec.dataset == "llcm":
        from ..datasets.base import parse_id_line

        ids = sorted(parse_id_line(root / "idx" / "test_id.txt"))
        if spec.mode == "i2v":
            return (
                llcm_all(root, Modality.INFRARED, ids),
                llcm_sampled(root, Modality.VISIBLE, ids, trial),
            )
        return (
            llcm_sampled(root, Modality.INFRARED, ids, trial),
            llcm_all(root, Modality.VISIBLE, ids),
        )
    raise DatasetError(f"protocol {spec.name}: no list builder for dataset {spec.dataset}")
