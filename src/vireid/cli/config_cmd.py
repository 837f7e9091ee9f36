"""``vireid config show|validate|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from .common import console, friendly_errors

app = typer.Typer(help="Inspect and validate YAML recipes.", no_args_is_help=True)


@app.command("show")
@friendly_errors
def show(
    config: Path = typer.Argument(..., help="YAML recipe"),
    overrides: list[str] = typer.Argument(None, help="key.path=value overrides"),
) -> None:
    """Print the fully resolved config (bases merged, overrides applied, defaults filled)."""
    from ..config import dump_config, load_config

    console.print(dump_config(load_config(config, overrides or [])), highlight=False)


@app.command("validate")
@friendly_errors
def validate(
    config: Path = typer.Argument(...), overrides: list[str] = typer.Argument(None)
) -> None:
    """Check a recipe: unknown keys and bad values fail with the key path."""
    from ..config import load_config

    load_config(config, overrides or [])
    console.print(f"[green]ok[/] {escape(str(config))}", highlight=False)


@app.command("schema")
def schema() -> None:
    """Print the JSON schema of a run config."""
    from ..config import RunCfg

    console.print_json(json.dumps(RunCfg.model_json_schema()))
