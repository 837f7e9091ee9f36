"""The built-in synthetic VI-ReID benchmark, written in official dataset layouts.

A synthetic *proxy*: numbers on it say nothing about accuracy on SYSU-MM01 or RegDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...utils.lazy import lazy_exports

_EXPORTS = {
    "FACTORS": ".spec",
    "SynthSpec": ".spec",
    "write_llcm": ".writer_llcm",
    "write_regdb": ".writer",
    "write_sysu": ".writer",
}
__all__ = ["FACTORS", "SynthSpec", "write_llcm", "write_regdb", "write_sysu"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .spec import FACTORS, SynthSpec
    from .writer import write_regdb, write_sysu
    from .writer_llcm import write_llcm
