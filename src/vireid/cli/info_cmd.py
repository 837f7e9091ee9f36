"""``vireid info CHECKPOINT [--json]``: parameters, FLOPs, feature dimension, recipe."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import console, friendly_errors


@friendly_errors
def info_cmd(
    checkpoint: Path = typer.Argument(..., help="a vireid checkpoint (last.pt)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable"),
) -> None:
    """What a checkpoint holds: parameters, FLOPs of one image at the recipe's
    resolution (torch.utils.flop_counter), feature dimension, the training recipe and the
    dataset fingerprint it was trained on."""
    from ..engine.model_facts import model_facts

    facts = model_facts(checkpoint)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    p, r, i = facts["parameters"], facts["recipe"], facts["input"]
    m = facts["model"]
    flip = " (×2 with eval.flip)" if i["flip"] else ""
    trial = f", trial {r['trial']}" if r["trial"] is not None else ""
    lines = [
        f"checkpoint   {facts['checkpoint']}",
        f"model        {m['name']} {m['arch']} width {m['width']:g}, weights {m['model_id']}",
        f"parameters   {p['total']:,} ({p['evaluation']:,} without the classifier), "
        f"buffers {p['buffers']:,}",
        f"FLOPs        {facts['gflops']:.3f} G per image at {i['height']}×{i['width']} "
        f"({facts['gmacs']:.3f} G multiply-adds){flip}",
        f"feature dim  {facts['feature_dim']}",
        f"recipe       {r['method']} on {r['dataset']}{trial}, epoch {r['epochs_trained']}/"
        f"{r['epochs']} (step {r['steps']}), batch {r['batch']['num_ids']}×"
        f"{r['batch']['num_instances']}, lr {r['lr']:g}, seed {r['seed']}",
        f"evaluates    {r['eval_protocol']}",
        f"dataset      fingerprint {facts['dataset_fingerprint']}",
    ]
    for line in lines:
        console.print(line, highlight=False, markup=False)
