"""Config schemas and the YAML loader (``_base_`` inheritance, dotted overrides)."""

from .loader import ConfigError, apply_overrides, dump_config, load_config, validate_config
from .schema import DataCfg, EvalCfg, RunCfg, TrainCfg

__all__ = [
    "ConfigError",
    "DataCfg",
    "EvalCfg",
    "RunCfg",
    "TrainCfg",
    "apply_overrides",
    "dump_config",
    "load_config",
    "validate_config",
]
