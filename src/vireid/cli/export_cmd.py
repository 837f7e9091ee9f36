"""``vireid export CHECKPOINT [OUT] [--format safetensors|onnx]``: weights-only
safetensors, or the evaluation embedding as one ONNX graph; each with a JSON sidecar."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, friendly_errors
from .paths import require_out_file

SUFFIX = {"safetensors": ".safetensors", "onnx": ".onnx"}


@friendly_errors
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="a vireid checkpoint"),
    out: Path = typer.Argument(
        None, help="output file (default: the checkpoint's name with the format's suffix)"
    ),
    fmt: str = typer.Option(
        None, "--format", help="safetensors | onnx (default: from OUT's suffix, else safetensors)"
    ),
    opset: int = typer.Option(None, help="onnx: ONNX opset (default: the exporter's)"),
    verify: bool = typer.Option(True, help="onnx: compare onnxruntime with torch after export"),
) -> None:
    """Export the model weights (.safetensors, config in OUT.json) or the feature
    extractor as an ONNX graph with a dynamic batch and a modality input."""
    fmt = fmt or next((f for f, s in SUFFIX.items() if out and out.suffix == s), "safetensors")
    if fmt not in SUFFIX:
        raise ValueError(f"--format {fmt!r}: expected one of {sorted(SUFFIX)}")
    out = out or checkpoint.with_suffix(SUFFIX[fmt])
    if out.suffix != SUFFIX[fmt]:
        raise ValueError(f"{out}: expected a {SUFFIX[fmt]} output path for --format {fmt}")
    require_out_file(out, "OUT")
    if fmt == "safetensors":
        from ..engine.checkpoint import export_safetensors, load_checkpoint

        export_safetensors(load_checkpoint(checkpoint), out)
        console.print(f"wrote {out} and {out.with_suffix('.json')}", highlight=False)
        return
    from ..inference.onnx import export_onnx

    res = export_onnx(checkpoint, out, opset=opset, verify=verify)
    diff = res.max_abs_diff
    parity = "" if diff is None else f"; onnxruntime vs torch: max |Δ| {diff:.1e}"
    console.print(f"wrote {res.path} and {res.meta}{parity}", highlight=False)
