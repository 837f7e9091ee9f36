"""``vireid index CHECKPOINT (--images PATH... | --protocol P) --out FILE.npz``."""

from __future__ import annotations

from pathlib import Path

import typer

from .checkpoint_args import checkpoint_trials, load_model, model_id, parse_trials
from .common import console, friendly_errors


@friendly_errors
def index_cmd(
    checkpoint: Path = typer.Argument(..., help="a vireid checkpoint (last.pt)"),
    out: Path = typer.Option(..., help="features file to write (.npz)"),
    images: list[Path] = typer.Option(None, help="image files or folders (repeatable)"),
    modality: str = typer.Option(
        None, help="visible|infrared for --images (default: from a folder name in the path)"
    ),
    protocol: str = typer.Option(None, help="embed every test image of this protocol"),
    root: Path = typer.Option(None, envvar="VIREID_DATA", help="dataset root (--protocol)"),
    manifest: Path = typer.Option(None, help="folder protocol: CSV manifest"),
    trials: str = typer.Option("all", help="--protocol: 'all' or the number of trials"),
    device: str = typer.Option(None, help="cpu, cuda, auto (default: the checkpoint's)"),
) -> None:
    """Embed a gallery (or a protocol's test images) into a features file, for
    ``vireid search`` and ``vireid eval --features``."""
    from ..data.protocols import get_protocol
    from ..data.records import Modality
    from ..engine.builders import featurizer
    from ..engine.distributed import DistInfo
    from ..evaluation.features import save_features
    from ..search import collect_images, protocol_images

    if bool(images) == bool(protocol):
        raise ValueError("give exactly one of --images PATH... or --protocol P")
    model, cfg, state, dev = load_model(checkpoint, device)
    if protocol:
        spec = get_protocol(protocol)
        chosen = checkpoint_trials(spec, checkpoint, state, None, parse_trials(trials))
        samples = protocol_images(spec.name, root, chosen, manifest)
    else:
        samples = collect_images(images, modality)
    # the evaluation's own extraction (size, flip, AMP), so eval --features agrees with it
    feats = featurizer(model, cfg, dev, DistInfo())(samples)
    path = save_features(out, feats, samples, model_id=model_id(state))
    n_ir = sum(s.modality is Modality.INFRARED for s in samples)
    console.print(
        f"indexed {len(samples)} images ({len(samples) - n_ir} visible, {n_ir} infrared), "
        f"D={feats.shape[1]} → {path}",
        highlight=False,
    )
