"""``vireid search INDEX.npz CHECKPOINT QUERY... [--top K] [--report DIR] [--json FILE]``."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, friendly_errors
from .paths import require_out_dir, require_out_file


@friendly_errors
def search_cmd(
    index: Path = typer.Argument(..., help="index file written by `vireid index`"),
    checkpoint: Path = typer.Argument(..., help="the checkpoint that built the index"),
    query: list[Path] = typer.Argument(..., help="query image files or folders"),
    modality: str = typer.Option(
        None, help="visible|infrared of the queries (default: from a folder name in the path)"
    ),
    top: int = typer.Option(10, min=1, help="matches per query"),
    any_modality: bool = typer.Option(
        False, help="search the whole gallery (default: the other modality only)"
    ),
    device: str = typer.Option(None, help="cpu, cuda, auto (default: the checkpoint's)"),
    report: Path = typer.Option(None, help="write an HTML page with thumbnails here"),
    json_out: Path = typer.Option(None, "--json", help="write the matches as JSON here"),
) -> None:
    """Find the gallery images closest to each query (cross-modality by default)."""
    from rich.table import Table

    from ..inference import FeatureExtractor
    from ..search import GalleryIndex, check_images, collect_images
    from ..utils.io import write_json

    require_out_file(json_out, "--json")  # before any embedding: fail at once, not at the end
    require_out_dir(report, "--report")
    gallery = GalleryIndex.from_file(index)
    fe = FeatureExtractor(checkpoint, device)
    gallery.check_model(fe.model_id, checkpoint)
    queries = collect_images(query, modality)
    check_images(queries)  # JPEG/PNG/BMP within the pixel limit, as `vireid index` reads
    qf = fe.embed_samples(queries)
    results: list = [None] * len(queries)
    for mod in {q.modality for q in queries}:  # one batched search per query modality
        rows = [i for i, q in enumerate(queries) if q.modality is mod]
        found = gallery.search(qf[rows], mod, top, cross_modality=not any_modality)
        for i, matches in zip(rows, found, strict=True):
            results[i] = matches
    mode = "whole gallery" if any_modality else "cross-modality"
    for q, matches in zip(queries, results, strict=True):
        table = Table(title=f"{q.path} ({q.modality.value}, {mode})", title_justify="left")
        for col in ("rank", "similarity", "modality", "id", "cam"):
            table.add_column(col, no_wrap=True)
        table.add_column("path", overflow="fold")  # whole paths: users copy them
        for m in matches:
            s = m.sample
            pid = str(s.pid) if s.pid >= 0 else "?"
            table.add_row(
                str(m.rank), f"{m.similarity:.4f}", s.modality.value, pid, str(s.camid), s.path
            )
        console.print(table)
    if json_out:
        write_json(
            json_out,
            [
                {
                    "query": q.path,
                    "modality": q.modality.value,
                    "matches": [
                        {
                            "rank": m.rank,
                            "similarity": m.similarity,
                            "path": m.sample.path,
                            "modality": m.sample.modality.value,
                            "pid": m.sample.pid,
                            "camid": m.sample.camid,
                        }
                        for m in matches
                    ],
                }
                for q, matches in zip(queries, results, strict=True)
            ],
        )
    if report:
        from ..report.search_html import write_search_report

        page = write_search_report(
            report,
            queries,
            results,
            gallery=str(index),
            gallery_size=len(gallery.samples),
            model=fe.model_id,
            mode=mode,
        )
        console.print(f"report: {page}", highlight=False)
