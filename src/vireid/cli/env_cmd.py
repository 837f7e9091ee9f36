"""``vireid env``: versions, devices, faiss and threads, for bug reports."""

from __future__ import annotations

import json

import typer

from .common import console


def env_cmd(as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """Print the environment (paste it into bug reports)."""
    from ..utils.env import collect_env

    info = collect_env()
    if as_json:
        console.print_json(json.dumps(info))
        return
    for k, v in info.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                console.print(f"{k}.{kk}: {vv}", highlight=False)
        else:
            console.print(f"{k}: {v}", highlight=False)
