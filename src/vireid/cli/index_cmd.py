"""``vireid index CHECKPOINT (--images PATH... | --protocol P) --out FILE.npz [--append]
[--kind flat|ivf|hnsw]``."""

from __future__ import annotations

from pathlib import Path

import typer

from .checkpoint_args import checkpoint_trials, parse_trials
from .common import console, friendly_errors


@friendly_errors
def index_cmd(
    checkpoint: Path = typer.Argument(..., help="a vireid checkpoint (last.pt)"),
    out: Path = typer.Option(..., help="index file to write (.npz)"),
    images: list[Path] = typer.Option(None, help="image files or folders (repeatable)"),
    modality: str = typer.Option(
        None, help="visible|infrared for --images (default: from a folder name in the path)"
    ),
    protocol: str = typer.Option(None, help="embed every test image of this protocol"),
    root: Path = typer.Option(None, envvar="VIREID_DATA", help="dataset root (--protocol)"),
    manifest: Path = typer.Option(None, help="folder protocol: CSV manifest"),
    trials: str = typer.Option("all", help="--protocol: 'all' or the number of trials"),
    device: str = typer.Option(None, help="cpu, cuda, auto (default: the checkpoint's)"),
    append: bool = typer.Option(
        False, help="add to the existing --out file (images already in it are skipped)"
    ),
    kind: str = typer.Option(None, help="flat (exact, default) | ivf | hnsw (approximate)"),
    nlist: int = typer.Option(None, help="ivf: cells (default 4·√N, at most N/39)"),
    nprobe: int = typer.Option(None, help="ivf: cells scanned per query (default 16)"),
    hnsw_m: int = typer.Option(None, help="hnsw: links per node (default 32)"),
    ef_construction: int = typer.Option(None, help="hnsw: candidates when inserting (80)"),
    ef_search: int = typer.Option(None, help="hnsw: candidates when searching (default 64)"),
) -> None:
    """Embed a gallery (or a protocol's test images) into an index file, for
    ``vireid search``, ``vireid serve`` and ``vireid eval --features``."""
    from ..data.protocols import get_protocol
    from ..inference import FeatureExtractor
    from ..search import GalleryIndex, IndexSpec, collect_images, protocol_images

    if bool(images) == bool(protocol):
        raise ValueError("give exactly one of --images PATH... or --protocol P")
    if append and not out.is_file():
        raise FileNotFoundError(f"--append: {out} does not exist; leave out --append to create it")
    options = dict(
        kind=kind,
        nlist=nlist,
        nprobe=nprobe,
        hnsw_m=hnsw_m,
        ef_construction=ef_construction,
        ef_search=ef_search,
    )
    fe = FeatureExtractor(checkpoint, device)
    if protocol:
        spec = get_protocol(protocol)
        chosen = checkpoint_trials(spec, checkpoint, fe.trial, None, parse_trials(trials))
        samples = protocol_images(spec.name, root, chosen, manifest)
    else:
        samples = collect_images(images, modality)
    if append:
        gallery = GalleryIndex.from_file(out)
        gallery.check_model(fe.model_id, checkpoint)
        stored = gallery.spec
        if stored.updated(**options) != stored:  # new options: restructure or retune
            gallery = GalleryIndex.from_file(out, stored.updated(**options))
        fresh = list({s.path: s for s in samples if s.path not in gallery}.values())
        gallery.add(fe.embed_samples(fresh), fresh)
        what = f"appended {len(fresh)} images ({len(samples) - len(fresh)} already indexed)"
        changed = bool(fresh) or gallery.spec != stored
    else:
        # the evaluation's own extraction (size, flip, AMP), so eval --features agrees with it
        spec = IndexSpec().updated(**options)
        gallery = GalleryIndex(fe.embed_samples(samples), samples, spec, fe.model_id)
        what, changed = f"indexed {len(samples)} images", True
    path = gallery.save(out) if changed else out  # nothing new: the file stays as it is
    n = gallery.counts()
    console.print(
        f"{what}; the gallery holds {len(gallery)} ({n['visible']} visible, "
        f"{n['infrared']} infrared), D={gallery.dim}, {gallery.spec.kind} index → {path}",
        highlight=False,
    )
