"""``vireid demo``: the whole pipeline on the built-in synthetic data, on CPU, in minutes.

Writes a synthetic SYSU-MM01-layout dataset, checks it, builds (once, then cached) the
synthetic stand-in for ImageNet weights, trains a quickstart recipe from it, evaluates
every gallery trial and writes the rank report. It prints the trained model next to a
randomly initialised network and to the untrained stand-in, so the table shows what
pretraining and training each bought. The numbers are real metrics of a real training
run on a synthetic proxy (they say nothing about SYSU-MM01).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..data.synthetic.spec import SynthSpec
from .common import console, friendly_errors

DEFAULT_CONFIG = Path("configs/quickstart/agw_synth.yaml")


def _untrained(cfg, pretrained, num_classes: int):
    """The recipe's network before training: random (``pretrained`` None) or the stand-in."""
    from ..engine.distributed import DistInfo
    from ..engine.run import eval_trials, run_evaluation
    from ..models import build_model
    from ..utils.device import pick_device
    from ..utils.seed import seed_everything

    seed_everything(cfg.train.seed)
    model_cfg = cfg.model.model_copy(update={"pretrained": pretrained})
    model = build_model(model_cfg, num_classes)
    device = pick_device(cfg.train.device)
    return run_evaluation(model.to(device), cfg, device, DistInfo(), eval_trials(cfg))


@friendly_errors
def demo_cmd(
    out: Path = typer.Option(Path("outputs/demo"), help="output folder"),
    config: Path = typer.Option(DEFAULT_CONFIG, help="recipe to train"),
    overrides: list[str] = typer.Argument(None, help="key.path=value overrides"),
    ids: int = typer.Option(SynthSpec.ids, help="synthetic identities"),
) -> None:
    """Synthesise data, pretrain the stand-in, train, evaluate and report."""
    from ..config import load_config
    from ..data.check import check_dataset
    from ..data.synthetic import write_sysu

    data_root = out / "data" / f"synth_sysu_{ids}"
    if not (data_root / "exp" / "test_id.txt").is_file():
        console.print(f"[bold]1/4[/] writing the synthetic dataset to {data_root}")
        stats = write_sysu(data_root, SynthSpec(ids=ids))
        console.print(f"    {stats['images']} images, {stats['identities']} identities")
    rep = check_dataset("sysu_mm01", data_root)
    if not rep.ok:
        raise ValueError(f"synthetic dataset at {data_root} failed its check: {rep.error}")
    cfg = load_config(
        config, [f"data.dataset.root={data_root}", f"output_dir={out / 'run'}", *(overrides or [])]
    )
    from ..engine.run import train
    from ..evaluation.results import comparison_table

    pretrained = cfg.model.pretrained
    if pretrained is not None:
        console.print(f"[bold]2/4[/] initial weights: {pretrained} (built once, then cached)")
        standin = _untrained(cfg, pretrained, 0)  # builds the stand-in when it is missing
    console.print(f"[bold]3/4[/] training {config} on {cfg.train.device}")
    result = train(cfg)
    console.print("[bold]4/4[/] evaluation of the last epoch, beside the untrained networks")
    rows = {"random init, no training": _untrained(cfg, None, 0)}
    if pretrained is not None:
        rows[f"{pretrained} init, no training"] = standin
    rows[f"trained: {cfg.method.name}, {cfg.train.epochs} epochs"] = result["result"]
    console.print(comparison_table(rows, f"{cfg.eval.protocol}: mean ± std over trials"))
    run = Path(result["run_dir"])
    console.print(
        f"results: {run / 'results.json'}\nrank report: {run / 'report/index.html'}",
        highlight=False,
    )
