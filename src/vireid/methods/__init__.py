"""Methods: each builds its losses around a model and implements ``training_step``."""

from . import cluster_contrast, ecul, maum, mmm, mun, supervised
from .base import Method

__all__ = [
    "Method",
    "build_method",
    "cluster_contrast",
    "ecul",
    "list_methods",
    "maum",
    "mmm",
    "mun",
    "supervised",
]


def build_method(cfg, model) -> Method:
    from ..registry import METHODS

    return METHODS.get(cfg.name)(cfg, model)


def list_methods() -> list[str]:
    from ..registry import METHODS

    return METHODS.names()
