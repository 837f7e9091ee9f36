"""Corruption robustness (SYSU-MM01-C, RegDB-C, LLCM-C): the 20 corruption types, their
seeded per-image assignment, and the clean / random-mix / sweep evaluation."""

from .apply import corrupt_image, library_available
from .catalog import CORRUPTIONS, GROUPS, SEVERITIES, parse_corruptions, parse_severities
from .corruptor import Corruptor, resize_like_test
from .plan import CorruptionPlan, image_key

__all__ = [
    "CORRUPTIONS",
    "GROUPS",
    "SEVERITIES",
    "CorruptionPlan",
    "Corruptor",
    "corrupt_image",
    "image_key",
    "library_available",
    "parse_corruptions",
    "parse_severities",
    "resize_like_test",
]
