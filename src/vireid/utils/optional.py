"""Optional dependencies (the extras in pyproject.toml): imported where they are needed,
failing with the command that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str) -> ModuleType:
    """``import module`` or fail with ``pip install 'vireid[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{module} is not installed ({e}); it comes with the {extra!r} extra: "
            f"pip install 'vireid[{extra}]'"
        ) from None
