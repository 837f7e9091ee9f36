"""``vireid data check``: read a dataset the way training and evaluation will, verify every
image decodes, and compare counts with the dataset's published statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..registry import DATASETS
from .cache import load_rgb
from .datasets.base import IMAGE_SUFFIXES
from .datasets.errors import DatasetError

EXPECTED_TREES = {
    "sysu_mm01": "ROOT/cam1..cam6/<pid:04d>/<frame>.jpg\nROOT/exp/train_id.txt val_id.txt "
    "test_id.txt   (one line of comma-separated ids)",
    "regdb": "ROOT/Visible/<pid>/<file>.bmp   ROOT/Thermal/<pid>/<file>.bmp\n"
    "ROOT/idx/{train,test}_{visible,thermal}_{1..10}.txt   ('<path> <label>' lines)",
    "llcm": "ROOT/idx/test_id.txt train_vis.txt train_nir.txt\n"
    "ROOT/test_vis/cam<N>/<pid:04d>/<files>   ROOT/test_nir/cam<N>/<pid:04d>/<files>",
    "folder": "ROOT/<train|query|gallery>/<visible|infrared>/cam<N>/<pid>/<image>\n"
    "or a CSV manifest: split,path,pid,camid,modality",
}
QUERY_PROTOCOL = {"sysu_mm01": "sysu/all/single", "regdb": "regdb/v2t", "llcm": "llcm/i2v"}


@dataclass
class CheckReport:
    dataset: str
    root: Path
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.unreadable

    def mismatches(self) -> dict[str, tuple[int, int]]:
        return {
            k: (self.counts[k], v)
            for k, v in self.expected.items()
            if k in self.counts and self.counts[k] != v
        }


def verify_image(path: str) -> str | None:
    """None if the file decodes completely as training would decode it (``load_rgb``:
    the same formats and pixel limit), else the reason."""
    try:
        load_rgb(path)
        return None
    except DatasetError as e:
        why = str(e).removeprefix(f"{path}: ")
        return "missing" if why == "image file does not exist" else why


def check_dataset(name: str, root, trial: int | None = None, progress=None) -> CheckReport:
    report = CheckReport(name, Path(root) if root else Path("$VIREID_DATA"))
    loader = DATASETS.get(name)
    try:
        splits = loader(root=root, trial=trial or 1) if name == "regdb" else loader(root=root)
    except DatasetError as e:
        report.error = str(e)
        return report
    report.root = splits.root
    report.counts = splits.stats()
    report.expected = dict(splits.expected)
    paths = [s.path for s in splits.train]
    if name in QUERY_PROTOCOL:
        from .protocols import query_gallery

        spec_trial = trial or (1 if name == "regdb" else 0)
        try:
            query, gallery = query_gallery(QUERY_PROTOCOL[name], splits.root, spec_trial)
            report.counts["queries"] = len(query)
            paths += [s.path for s in query] + [s.path for s in gallery]
        except DatasetError as e:
            report.error = str(e)
    # every image file in the tree, not only the ones this trial draws
    paths += sorted(str(p) for p in splits.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    for p in dict.fromkeys(paths):
        why = verify_image(p)
        if why:
            report.unreadable.append(f"{p}: {why}")
        if progress:
            progress(1)
    return report
