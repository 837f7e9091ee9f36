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
    max_pixels: int = typer.Option(
        40_000_000, min=1, help="refuse images with more pixels (decompression bombs)"
    ),
) -> None:
    """Embed a gallery (or a protocol's test images) into an index file, for
    ``vireid search``, ``vireid serve`` and ``vireid eval --features``.

    The index file has one writer at a time: this command holds ``OUT.lock`` while it
    runs and is refused while another writer (a ``vireid serve`` of the same file) holds
    it."""
    from ..search.lock import IndexLock

    if bool(images) == bool(protocol):
        raise ValueError("give exactly one of --images PATH... or --protocol P")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; expected the index file to write (.npz)")
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
    with IndexLock(out):  # before any work: a busy file is refused at once
        _index(
            checkpoint,
            out,
            images,
            modality,
            protocol,
            root,
            manifest,
            trials,
            device,
            append,
            options,
            max_pixels,
        )


def _index(
    checkpoint,
    out,
    images,
    modality,
    protocol,
    root,
    manifest,
    trials,
    device,
    append,
    options,
    max_pixels,
) -> None:
    from ..data.protocols import get_protocol
    from ..inference import FeatureExtractor
    from ..search import GalleryIndex, IndexSpec, check_images, collect_images, protocol_images

    gallery = GalleryIndex.from_file(out) if append else None  # a broken file fails first
    fe = FeatureExtractor(checkpoint, device)
    if gallery is not None:
        gallery.check_model(fe.model_id, checkpoint, adding=True)
    if protocol:
        spec = get_protocol(protocol)
        trained_on = fe.cfg.data.dataset.name
        chosen = checkpoint_trials(
            spec, checkpoint, trained_on, fe.trial, None, parse_trials(trials)
        )
        samples = protocol_images(spec.name, root, chosen, manifest)
    else:
        samples = collect_images(images, modality)
    if gallery is not None:
        stored = gallery.spec
        if stored.updated(**options) != stored:  # new options: restructure or retune
            gallery = GalleryIndex.from_file(out, stored.updated(**options))
        fresh = list({s.path: s for s in samples if s.path not in gallery}.values())
        check_images(fresh, max_pixels)
        gallery.add(fe.embed_samples(fresh), fresh)
        what = f"appended {len(fresh)} images ({len(samples) - len(fresh)} already indexed)"
        changed = bool(fresh) or gallery.spec != stored
    else:
        check_images(samples, max_pixels)
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
