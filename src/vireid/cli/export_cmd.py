"""``vireid export CHECKPOINT OUT.safetensors``: weights-only export with a JSON sidecar."""

from __future__ import annotations

from pathlib import Path

import typer

from ..engine.checkpoint import export_safetensors, load_checkpoint
from .common import console, friendly_errors


@friendly_errors
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="a vireid checkpoint"),
    out: Path = typer.Argument(..., help="output .safetensors file"),
) -> None:
    """Export the model weights to .safetensors (config in OUT.json)."""
    if out.suffix != ".safetensors":
        raise ValueError(f"{out}: expected a .safetensors output path")
    export_safetensors(load_checkpoint(checkpoint), out)
    console.print(f"wrote {out} and {out.with_suffix('.json')}", highlight=False)
