"""``vireid list datasets|models|methods|protocols|corruptions|recipes``."""

from __future__ import annotations

from enum import Enum

import typer

from .common import console


class Kind(str, Enum):
    datasets = "datasets"
    models = "models"
    methods = "methods"
    protocols = "protocols"
    corruptions = "corruptions"
    recipes = "recipes"


def list_cmd(kind: Kind = typer.Argument(..., help="what to list")) -> None:
    """List registered names."""
    from rich.table import Table

    from .. import registry

    if kind is Kind.corruptions:
        return _corruptions()
    if kind is Kind.recipes:
        from ..config.recipes import list_recipes

        for name in list_recipes():
            console.print(name, highlight=False, markup=False)
        return
    import vireid.data.datasets
    import vireid.data.protocols
    import vireid.methods
    import vireid.models  # noqa: F401

    reg = {
        "datasets": registry.DATASETS,
        "models": registry.MODELS,
        "methods": registry.METHODS,
        "protocols": registry.PROTOCOLS,
    }[kind.value]
    table = Table(title=kind.value)
    table.add_column("name")
    if kind is Kind.protocols:
        table.add_column("dataset")
        table.add_column("trials")
        table.add_column("description")
        for name in reg.names():
            s = reg.get(name)
            table.add_row(name, s.dataset, f"{s.trials[0]}..{s.trials[-1]}", s.description)
    else:
        for name in reg.names():
            table.add_row(name)
    console.print(table)


def _corruptions() -> None:
    from rich.table import Table

    from ..evaluation.corruption import CORRUPTIONS, GROUPS, library_available

    table = Table(title="corruptions (vireid eval --corrupt; severities 1-5)")
    for col in ("name", "family", "implementation"):
        table.add_column(col)
    lib = "imagecorruptions" + ("" if library_available() else " (not installed: vireid[corrupt])")
    for name in CORRUPTIONS:
        table.add_row(
            name, GROUPS[name], "vireid (albumentations 0.5.2 recipe)" if name == "rain" else lib
        )
    console.print(table)
