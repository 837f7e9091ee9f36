"""Mechanism mutants: each removes or miswires one mechanism a paper claims, at run time.

A mutant is a function that receives a ``pytest.MonkeyPatch`` and breaks exactly one
mechanism by replacing a function, method or attribute of the *library* (never by editing
source text, so a mutant survives refactors as long as the name it patches exists; if the
name is gone, ``monkeypatch.setattr`` raises and the runner reports the mutant as broken,
which fails the run just like a survivor). Each mutant names the tests that claim to guard
its mechanism; ``python -m tests.mutants`` (``make mutants``) applies each mutant in turn,
runs those tests and reports which test killed it, or that it **survived**.

Writing one (in the module of its method, e.g. ``tests/mutants/mmm.py``)::

    @mutant(
        "mmm.gmm_confidence_ones",
        "MMM SCA: GMM posteriors weight the memories and the Intra term",
        tests=["tests/test_mmm_method.py::test_gmm_confidences_weight_the_memory"],
    )
    def _(mp):
        mp.setattr(mmm_mod, "gmm_confidence", lambda losses, *a, **k: torch.ones_like(losses))

Rules (CONTRIBUTING.md, "A new mechanism comes with its mutant"):

* one mechanism per mutant, described by what it breaks (``mechanism``);
* the replacement must still run (same signature and shapes): a mutant that only makes the
  code crash is killed by any test and shows nothing;
* a function that other modules imported with ``from … import`` is replaced with
  ``replace(mp, module, name, new)``, which patches those copies too;
* ``tests`` are pytest node ids (or files) of tests that pass on the real code; the runner
  checks that first;
* ``fast=True`` puts the mutant in the subset CI runs (``--fast``): pick the mutants whose
  guards take a few seconds (no training run).

The conftest applies the mutant named by ``$VIREID_MUTANT`` before collection, so test
modules that import a name with ``from … import`` see the mutated object too. Spawned
worker processes (DDP tests) call ``apply_from_env()`` themselves. ``$VIREID_MUTANT_FILES``
(paths) adds mutant files run with ``mutant`` and ``replace`` as globals: the runner's own
test registers deliberately bad mutants that way.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ENV = "VIREID_MUTANT"
EXTRA = "VIREID_MUTANT_FILES"
_EXTRA_LOADED: set[str] = set()
_REPO = str(Path(__file__).resolve().parents[2])
# one module per method or area; each registers its mutants on import
MODULES = (
    "agw",
    "cluster_contrast",
    "mmm",
    "ecul",
    "maum",
    "mun",
    "engine",
    "data",
    "evaluation",
    "recipes",
    "workflow",
)


@dataclass(frozen=True)
class Mutant:
    name: str
    mechanism: str
    tests: tuple[str, ...]
    apply: Callable[[pytest.MonkeyPatch], None] = field(repr=False)
    fast: bool = False


REGISTRY: dict[str, Mutant] = {}


def mutant(name: str, mechanism: str, tests: list[str], fast: bool = False):
    """Register the decorated ``apply(monkeypatch)`` function as mutant ``name``."""
    if not tests:
        raise ValueError(f"mutant {name}: name at least one guarding test")

    def register(fn: Callable[[pytest.MonkeyPatch], None]):
        if name in REGISTRY:
            raise ValueError(f"mutant {name} is registered twice")
        REGISTRY[name] = Mutant(name, mechanism, tuple(tests), fn, fast)
        return fn

    return register


def replace(mp: pytest.MonkeyPatch, owner, name: str, new) -> None:
    """``owner.name = new``, and the same in every loaded module of this repository
    (``src/vireid``, ``tests``) that holds the old object under any name: ``from .x import
    f`` copied the reference, which a plain ``setattr`` on ``owner`` would leave pointing at
    the real function (a spawned DDP rank imports its test module before it applies the
    mutant, so test modules are patched too)."""
    old = getattr(owner, name)
    mp.setattr(owner, name, new)
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None) or ""
        if mod is owner or not path.startswith(_REPO):
            continue
        for attr, value in list(vars(mod).items()):
            if value is old:
                mp.setattr(mod, attr, new)


def load_all() -> dict[str, Mutant]:
    for m in MODULES:
        try:
            importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise
    # extra mutant files (the runner's own test registers deliberately bad mutants there):
    # run with ``mutant`` and ``replace`` as globals, once per process
    for path in filter(None, os.environ.get(EXTRA, "").split(os.pathsep)):
        if path not in _EXTRA_LOADED:
            _EXTRA_LOADED.add(path)
            runpy.run_path(path, init_globals={"mutant": mutant, "replace": replace})
    return REGISTRY


def apply(name: str, mp: pytest.MonkeyPatch) -> Mutant:
    registry = load_all()
    if name not in registry:
        raise KeyError(f"${ENV}={name}: no such mutant (known: {', '.join(sorted(registry))})")
    registry[name].apply(mp)
    return registry[name]


_ACTIVE: pytest.MonkeyPatch | None = None


def apply_from_env() -> str | None:
    """Apply ``$VIREID_MUTANT`` for the rest of this process (idempotent)."""
    global _ACTIVE
    name = os.environ.get(ENV)
    if not name or _ACTIVE is not None:
        return name
    _ACTIVE = pytest.MonkeyPatch()
    apply(name, _ACTIVE)
    return name
