"""RegDB (Nguyen et al., Sensors 2017) with the de-facto standard idx files.

    RegDB/Visible/<pid>/<file>.bmp    RegDB/Thermal/<pid>/<file>.bmp
    RegDB/idx/{train,test}_{visible,thermal}_{1..10}.txt    '<relative path> <label>' per line

Each trial t is its own 206/206 identity split and trains its own model; a model trained on
trial t may only be evaluated on trial t. Labels are taken from the idx files (as AGW does);
visible images get camid 1 and thermal images camid 2 (as ``eval_regdb`` assumes).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...registry import DATASETS
from ..records import Modality, Sample
from .base import DatasetSplits, resolve_root
from .errors import DatasetError, int64, require_file

TRIALS = tuple(range(1, 11))
CAMID = {Modality.VISIBLE: 1, Modality.INFRARED: 2}
FILE_KEY = {Modality.VISIBLE: "visible", Modality.INFRARED: "thermal"}
EXPECTED = {
    "train_ids": 206,
    "train_visible": 2060,
    "train_infrared": 2060,
    "test_ids": 206,
    "queries": 2060,
}


def check_trial(trial: int | None) -> int:
    if trial is None or int(trial) not in TRIALS:
        raise DatasetError(
            f"RegDB: trial must be one of 1..10 (got {trial!r}); each trial is "
            "its own train/test split"
        )
    return int(trial)


def parse_list_line(line: str, list_file: Path, lineno: int) -> tuple[str, int]:
    parts = line.split()
    if len(parts) != 2 or not re.fullmatch(r"-?[0-9]+", parts[1]):
        raise DatasetError(
            f"{list_file}:{lineno}: {line.strip()!r}; expected '<relative path> <integer label>'"
        )
    return parts[0], int64(int(parts[1]), "label", f"{list_file}:{lineno}")


def read_list(
    root: Path,
    list_file: Path,
    modality: Modality,
    check_files: bool = True,
    camid: int | None = None,
) -> list[Sample]:
    """Read an idx list ('<path> <label>' lines) into Samples rooted at ``root``."""
    require_file(list_file, "RegDB/LLCM index list")
    out = []
    for lineno, line in enumerate(list_file.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        rel, label = parse_list_line(line, list_file, lineno)
        path = root / rel
        if check_files and not path.is_file():
            raise DatasetError(f"{list_file}:{lineno}: image {path} does not exist")
        out.append(Sample(str(path), label, CAMID[modality] if camid is None else camid, modality))
    if not out:
        raise DatasetError(f"{list_file}: no entries; expected '<relative path> <label>' lines")
    return out


def regdb_list(root: Path, split: str, modality: Modality, trial: int) -> list[Sample]:
    name = f"{split}_{FILE_KEY[modality]}_{trial}.txt"
    return read_list(root, root / "idx" / name, modality)


@DATASETS.register("regdb")
def load_regdb(root=None, trial: int = 1) -> DatasetSplits:
    root = resolve_root(root, "regdb")
    trial = check_trial(trial)
    train = regdb_list(root, "train", Modality.VISIBLE, trial) + regdb_list(
        root, "train", Modality.INFRARED, trial
    )
    test_ids = sorted({s.pid for s in regdb_list(root, "test", Modality.VISIBLE, trial)})
    return DatasetSplits("regdb", root, train, test_ids, dict(EXPECTED))
