"""Dataset readers: each returns training records and what the protocols need."""

from . import folder, llcm, regdb, sysu_mm01
from .base import DatasetSplits, resolve_root
from .errors import DatasetError

__all__ = [
    "DatasetError",
    "DatasetSplits",
    "build_dataset",
    "folder",
    "llcm",
    "regdb",
    "resolve_root",
    "sysu_mm01",
]


def build_dataset(cfg) -> DatasetSplits:
    """``DatasetCfg`` → records (layer 2: the only place a dataset reads a config)."""
    from ...registry import DATASETS

    kwargs = cfg.model_dump(exclude={"name"})
    return DATASETS.get(cfg.name)(**kwargs)
