"""Name → object registries (timm's ``register_model`` / ``list_models`` pattern).

Every pluggable piece (datasets, models, methods, protocols) registers itself under a
lower_snake name so configs and the CLI can refer to it by string.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """Unknown or duplicate registry name; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of objects of one kind (e.g. ``DATASETS``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@DATASETS.register("sysu_mm01")``. Duplicate names raise."""
        if not name or name != name.lower() or " " in name:
            raise ValueError(f"{self.kind} name {name!r} must be lower_snake_case")

        def deco(obj: T) -> T:
            if name in self._items:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


DATASETS: Registry = Registry("dataset")
MODELS: Registry = Registry("model")
METHODS: Registry = Registry("method")
PROTOCOLS: Registry = Registry("protocol")
