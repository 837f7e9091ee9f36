"""LLCM (Zhang & Wang, CVPR 2023) in the layout of its DEEN code.

    LLCM/idx/test_id.txt                      one comma-separated line of test ids
    LLCM/idx/train_vis.txt, train_nir.txt     '<relative path> <label>' per line
    LLCM/vis/<pid:04d>/<pid:04d>_c<NN>_s<...>_f<...>_vis.jpg     (training images; nir/ alike)
    LLCM/test_vis/cam<N>/<pid:04d>/<files>    LLCM/test_nir/cam<N>/<pid:04d>/<files>

Cameras are physical and shared by both modalities (no NIR cam3). The camera is read from
the path component ``cam<N>`` *below the root* (the test folders; DEEN takes the first
"cam" substring of the whole path, which breaks when the root itself contains "cam"), or,
for the training images, which sit in identity folders without a camera folder, from the
file name's ``_c<NN>_`` field (``0001_c01_s185535_f7010_nir.jpg``: camera 1), as the
community's LLCM loaders read it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...registry import DATASETS
from ..records import Modality, Sample
from .base import DatasetSplits, parse_id_line, resolve_root
from .errors import DatasetError, int64, require_dir, require_file
from .regdb import read_list

CAM_RE = re.compile(r"^cam(\d+)$")
FILE_CAM_RE = re.compile(r"^\d+_c(\d+)_")  # <pid>_c<NN>_s<seq>_f<frame>_<vis|nir>.jpg
TEST_DIRS = {Modality.VISIBLE: "test_vis", Modality.INFRARED: "test_nir"}
TRAIN_LISTS = {Modality.VISIBLE: "train_vis.txt", Modality.INFRARED: "train_nir.txt"}
EXPECTED = {"train_ids": 713, "test_ids": 351}


def camid_from_relpath(rel: str) -> int:
    """Camera of an image path below the root: a ``cam<N>`` folder, else the file name's
    ``<pid>_c<NN>_`` field."""
    parts = Path(rel).parts
    for part in parts:
        m = CAM_RE.match(part)
        if m:
            return int64(int(m.group(1)), "camera", rel)
    m = FILE_CAM_RE.match(parts[-1]) if parts else None
    if m:
        return int64(int(m.group(1)), "camera", rel)
    raise DatasetError(
        f"LLCM: no camera in {rel!r}; expected a 'cam<N>' folder or a file name "
        "'<pid>_c<NN>_...' (e.g. nir/0001/0001_c01_s185535_f7010_nir.jpg)"
    )


def test_cameras(root: Path, modality: Modality) -> list[int]:
    folder = require_dir(root / TEST_DIRS[modality], f"LLCM {modality.value} test folder")
    cams = sorted(int(m.group(1)) for p in folder.iterdir() if (m := CAM_RE.match(p.name)))
    if not cams:
        raise DatasetError(f"{folder}: no cam<N> folders")
    return cams


@DATASETS.register("llcm")
def load_llcm(root=None) -> DatasetSplits:
    root = resolve_root(root, "llcm")
    train = []
    for mod, name in TRAIN_LISTS.items():
        samples = read_list(root, root / "idx" / name, mod, camid=0)
        base = root
        train += [
            Sample(s.path, s.pid, camid_from_relpath(str(Path(s.path).relative_to(base))), mod)
            for s in samples
        ]
    test_ids = sorted(parse_id_line(require_file(root / "idx" / "test_id.txt", "LLCM test ids")))
    return DatasetSplits("llcm", root, train, test_ids, dict(EXPECTED))
