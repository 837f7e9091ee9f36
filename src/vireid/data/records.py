"""The record every dataset yields: one image with its identity, camera and modality."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Modality(str, Enum):
    """Imaging modality. Never encoded as 1/2 ints inside vireid."""

    VISIBLE = "visible"
    INFRARED = "infrared"

    @property
    def short(self) -> str:
        return "V" if self is Modality.VISIBLE else "I"

    @classmethod
    def parse(cls, value: str | Modality) -> Modality:
        if isinstance(value, Modality):
            return value
        v = str(value).strip().lower()
        aliases = {
            "visible": cls.VISIBLE,
            "rgb": cls.VISIBLE,
            "vis": cls.VISIBLE,
            "v": cls.VISIBLE,
            "infrared": cls.INFRARED,
            "ir": cls.INFRARED,
            "nir": cls.INFRARED,
            "thermal": cls.INFRARED,
            "t": cls.INFRARED,
            "i": cls.INFRARED,
        }
        if v not in aliases:
            raise ValueError(
                f"unknown modality {value!r}; expected one of visible/rgb/vis or "
                "infrared/ir/nir/thermal"
            )
        return aliases[v]


@dataclass(frozen=True, slots=True)
class Sample:
    """One image. ``pid`` is the dataset's original identity number (training code maps it
    to a contiguous class index); ``camid`` the dataset's camera number."""

    path: str
    pid: int
    camid: int
    modality: Modality


def relabel(samples: list[Sample]) -> dict[int, int]:
    """Map original pids to contiguous class indices 0..C-1 in sorted pid order."""
    return {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}
