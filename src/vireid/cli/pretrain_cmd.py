"""``vireid pretrain``: the synthetic benchmark's stand-in for ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import typer

from ..pretrain.spec import PretrainSpec
from .common import console, friendly_errors
from .paths import require_out_file
from .synth_cmd import parse_size


@friendly_errors
def pretrain_cmd(
    arch: str = typer.Option("resnet18", help="resnet18 | resnet34 | resnet50"),
    width: float = typer.Option(0.5, help="channel multiplier of the model it is for"),
    size: str = typer.Option(
        f"{PretrainSpec.height}x{PretrainSpec.image_width}", help="image size HxW of the population"
    ),
    ids: int = typer.Option(PretrainSpec.ids, help="identities of the population"),
    images_per_id: int = typer.Option(PretrainSpec.images_per_id),
    epochs: int = typer.Option(PretrainSpec.epochs),
    seed: int = typer.Option(0, help="population and training seed"),
    out: Path | None = typer.Option(None, help="weights file (default: the cache)"),
    force: bool = typer.Option(False, help="rebuild even when cached"),
) -> None:
    """Train a backbone on a visible-only synthetic population (identities disjoint from
    the benchmark's) and write weights that ``model.pretrained`` accepts. An analogue of
    ImageNet pretraining for the synthetic benchmark; real-data recipes use ImageNet."""
    from ..pretrain.cache import ensure_weights, save_weights
    from ..pretrain.train import pretrain_backbone

    h, w = parse_size(size)
    spec = PretrainSpec(
        arch=arch,
        width=width,
        height=h,
        image_width=w,
        ids=ids,
        images_per_id=images_per_id,
        epochs=epochs,
        seed=seed,
    )
    say = lambda s: console.print(f"  {s}", highlight=False)  # noqa: E731
    if out is None:
        path = ensure_weights(spec, force=force, log=say)
    else:
        if out.suffix != ".safetensors":
            raise ValueError(f"--out {out}: expected a .safetensors path")
        require_out_file(out, "--out")
        state, summary = pretrain_backbone(spec, say)
        path = save_weights(state, summary, out)
    console.print(f"weights: {path}\nuse: model.pretrained={path}", highlight=False)
