"""What a dataset reader provides, and the shared helpers readers are built from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..records import Modality, Sample
from .errors import DatasetError, int64, require_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def resolve_root(root: str | os.PathLike | None, dataset: str) -> Path:
    """``root`` or ``$VIREID_DATA/<dataset>`` or ``$VIREID_DATA`` itself."""
    if root is None:
        env = os.environ.get("VIREID_DATA")
        if not env:
            raise DatasetError(
                f"{dataset}: no dataset root given; pass --root DIR (or data.dataset.root) "
                "or set VIREID_DATA"
            )
        base = Path(env)
        root = base / dataset if (base / dataset).is_dir() else base
    return require_dir(Path(root).expanduser(), f"{dataset} root")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by full path string (as the
    community code sorts them)."""
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: str(p)
    )


def parse_id_line(path: Path) -> list[int]:
    """Read a one-line comma-separated id file (SYSU ``exp/*.txt``, LLCM ``test_id.txt``)."""
    text = path.read_text(errors="replace").strip()
    if not text:
        raise DatasetError(f"{path}: empty; expected one line of comma-separated integer ids")
    first = text.splitlines()[0]
    ids = []
    for k, tok in enumerate(first.split(",")):
        tok = tok.strip()
        if not tok:
            continue
        if not (tok.isascii() and tok.isdigit()):  # "²".isdigit() is True
            raise DatasetError(
                f"{path}: item {k + 1} is {tok!r}; expected a non-negative integer id"
            )
        ids.append(int64(int(tok), f"item {k + 1}", str(path)))
    if not ids:
        raise DatasetError(f"{path}: no ids found; expected e.g. '1,2,3'")
    return ids


@dataclass
class DatasetSplits:
    """Training records plus what the protocols need to build query/gallery lists."""

    name: str
    root: Path
    train: list[Sample]
    test_ids: list[int] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)

    def by_modality(self, modality: Modality) -> list[Sample]:
        return [s for s in self.train if s.modality is modality]

    def stats(self) -> dict[str, int]:
        vis = self.by_modality(Modality.VISIBLE)
        ir = self.by_modality(Modality.INFRARED)
        return {
            "train_ids": len({s.pid for s in self.train}),
            "train_visible": len(vis),
            "train_infrared": len(ir),
            "test_ids": len(self.test_ids),
        }
