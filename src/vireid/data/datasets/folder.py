"""A generic dataset for users' own data.

Tree layout (modality, camera and identity encoded in the path)::

    ROOT/<split>/<modality>/cam<N>/<pid>/<image>      split ∈ train, query, gallery
                                                      modality ∈ visible|rgb, infrared|ir|thermal

or a CSV manifest with the header ``split,path,pid,camid,modality`` (paths relative to the
manifest's folder or absolute). The ``folder`` protocol evaluates ``query`` against
``gallery`` with same-identity-same-camera removal and standard CMC.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ...registry import DATASETS
from ..records import Modality, Sample
from .base import DatasetSplits, list_images, resolve_root
from .errors import DatasetError, int64, require_file

SPLITS = ("train", "query", "gallery")
MANIFEST_COLUMNS = ("split", "path", "pid", "camid", "modality")


def _int(value: str, what: str, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {what} {value!r} is not an integer") from None
    return int64(number, what, where)


def read_tree(root: Path) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    for split in SPLITS:
        sdir = root / split
        if not sdir.is_dir():
            continue
        for mdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            try:
                mod = Modality.parse(mdir.name)
            except ValueError as e:
                raise DatasetError(f"{mdir}: {e}") from None
            for cdir in sorted(p for p in mdir.iterdir() if p.is_dir()):
                if not cdir.name.startswith("cam"):
                    raise DatasetError(f"{cdir}: expected a camera folder named cam<N>")
                cam = _int(cdir.name[3:], "camera", str(cdir))
                for pdir in sorted(p for p in cdir.iterdir() if p.is_dir()):
                    pid = _int(pdir.name, "identity folder", str(pdir))
                    files = list_images(pdir)
                    if not files:
                        raise DatasetError(f"{pdir}: identity folder holds no images")
                    out[split] += [Sample(str(f), pid, cam, mod) for f in files]
    return out


def read_manifest(path: Path) -> dict[str, list[Sample]]:
    require_file(path, "folder dataset manifest")
    out: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(
                f"{path}: missing columns {missing}; expected header {','.join(MANIFEST_COLUMNS)}"
            )
        for lineno, row in enumerate(reader, 2):
            where = f"{path}:{lineno}"
            split = row["split"].strip()
            if split not in out:
                raise DatasetError(f"{where}: split {split!r}; expected one of {SPLITS}")
            img = Path(row["path"])
            img = img if img.is_absolute() else path.parent / img
            try:
                mod = Modality.parse(row["modality"])
            except ValueError as e:
                raise DatasetError(f"{where}: {e}") from None
            out[split].append(
                Sample(
                    str(img),
                    _int(row["pid"], "pid", where),
                    _int(row["camid"], "camid", where),
                    mod,
                )
            )
    return out


def folder_root(root=None, manifest=None) -> Path:
    """The dataset root; with a manifest and no root, the manifest's folder."""
    if manifest is not None and root is None:
        return Path(manifest).parent
    return resolve_root(root, "folder")


def load_folder_splits(root=None, manifest=None) -> dict[str, list[Sample]]:
    if manifest is not None:
        splits = read_manifest(Path(manifest))
        where = f"{manifest}: no train or query rows; expected"
    else:
        root = resolve_root(root, "folder")
        splits = read_tree(root)
        where = f"{root}: no images found; expected {root}/<split>/<modality>/cam<N>/<pid>/"
        where += "<image> or"
    if not splits["train"] and not splits["query"]:
        raise DatasetError(f"{where} a manifest with rows split,path,pid,camid,modality")
    return splits


@DATASETS.register("folder")
def load_folder(root=None, manifest=None) -> DatasetSplits:
    splits = load_folder_splits(root, manifest)
    test_ids = sorted({s.pid for s in splits["query"]})
    return DatasetSplits("folder", folder_root(root, manifest), splits["train"], test_ids)
