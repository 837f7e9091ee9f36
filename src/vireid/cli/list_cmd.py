"""``vireid list datasets|models|methods|protocols``."""

from __future__ import annotations

from enum import Enum

import typer
from rich.table import Table

from .. import registry
from .common import console


class Kind(str, Enum):
    datasets = "datasets"
    models = "models"
    methods = "methods"
    protocols = "protocols"


def list_cmd(kind: Kind = typer.Argument(..., help="what to list")) -> None:
    """List registered names."""
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
