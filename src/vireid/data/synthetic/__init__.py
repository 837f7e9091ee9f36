"""The built-in synthetic VI-ReID benchmark, written in official dataset layouts.

A synthetic *proxy*: numbers on it say nothing about accuracy on SYSU-MM01 or RegDB.
"""

from .spec import FACTORS, SynthSpec
from .writer import write_regdb, write_sysu
from .writer_llcm import write_llcm

__all__ = ["FACTORS", "SynthSpec", "write_llcm", "write_regdb", "write_sysu"]
