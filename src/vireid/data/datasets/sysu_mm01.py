"""SYSU-MM01 (Wu et al., ICCV 2017) in its release layout.

    SYSU-MM01/cam1..cam6/<pid:04d>/<frame:04d>.jpg
    SYSU-MM01/exp/{train,val,test}_id.txt      one line of comma-separated ids

Visible cameras 1, 2, 4, 5; infrared 3, 6 (cam3 shares cam2's location). Training set =
train ∪ val ids (395 identities), ordered sorted id × camera × sorted file as AGW's
``pre_process_sysu.py`` orders it. Camera and identity come from the directory names, never
from character offsets, so a root containing "cam" is harmless.
"""

from __future__ import annotations

from pathlib import Path

from ...registry import DATASETS
from ..records import Modality, Sample
from .base import DatasetSplits, list_images, parse_id_line, resolve_root
from .errors import DatasetError, require_file

VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
EXPECTED = {
    "train_ids": 395,
    "train_visible": 22258,
    "train_infrared": 11909,
    "test_ids": 96,
    "queries": 3803,
}


def camera_modality(camid: int) -> Modality:
    return Modality.INFRARED if camid in INFRARED_CAMS else Modality.VISIBLE


def identity_images(root: Path, camid: int, pid: int) -> list[Path]:
    """Sorted images of ``pid`` in ``cam<camid>``; [] when the person never passed that
    camera. An existing but empty folder is an error (a broken copy of the dataset)."""
    folder = root / f"cam{camid}" / f"{pid:04d}"
    if not folder.is_dir():
        return []
    files = list_images(folder)
    if not files:
        raise DatasetError(f"{folder}: identity folder holds no images (.jpg/.png/.bmp)")
    return files


def read_split_ids(root: Path, split: str) -> list[int]:
    return sorted(
        parse_id_line(require_file(root / "exp" / f"{split}_id.txt", f"SYSU-MM01 {split} split"))
    )


def samples_for(root: Path, pids: list[int], cams: tuple[int, ...]) -> list[Sample]:
    out = []
    for pid in sorted(pids):
        for cam in cams:
            mod = camera_modality(cam)
            out += [Sample(str(p), pid, cam, mod) for p in identity_images(root, cam, pid)]
    return out


@DATASETS.register("sysu_mm01")
def load_sysu_mm01(root=None) -> DatasetSplits:
    root = resolve_root(root, "sysu_mm01")
    for cam in (*VISIBLE_CAMS, *INFRARED_CAMS):
        if not (root / f"cam{cam}").is_dir():
            raise DatasetError(f"SYSU-MM01: expected camera folder {root / f'cam{cam}'}")
    train_ids = sorted(set(read_split_ids(root, "train")) | set(read_split_ids(root, "val")))
    test_ids = read_split_ids(root, "test")
    overlap = set(train_ids) & set(test_ids)
    if overlap:
        raise DatasetError(
            f"{root / 'exp'}: ids {sorted(overlap)[:5]} are in both train/val "
            "and test; expected disjoint splits"
        )
    # AGW orders visible and infrared training lists separately (two .npy files).
    train = samples_for(root, train_ids, VISIBLE_CAMS) + samples_for(root, train_ids, INFRARED_CAMS)
    return DatasetSplits("sysu_mm01", root, train, test_ids, dict(EXPECTED))
