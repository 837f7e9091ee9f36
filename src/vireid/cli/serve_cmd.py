"""``vireid serve INDEX CHECKPOINT [--host 127.0.0.1 --port 8000]``."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, friendly_errors


@friendly_errors
def serve_cmd(
    index: Path = typer.Argument(..., help="index file written by `vireid index`"),
    checkpoint: Path = typer.Argument(..., help="the checkpoint that built the index"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    device: str = typer.Option(None, help="cpu, cuda, auto (default: the checkpoint's)"),
    upload_dir: Path = typer.Option(
        None, help="where POST /gallery stores pictures (default: <index>_uploads/)"
    ),
    read_only: bool = typer.Option(False, help="refuse POST /gallery"),
    max_upload_mb: float = typer.Option(10.0, min=0.001, help="largest accepted upload"),
    max_k: int = typer.Option(100, min=1, help="largest k a search may ask for"),
    log_level: str = typer.Option("info", help="uvicorn's: warning hides the access log"),
) -> None:
    """Serve cross-modality search over INDEX: a web page at /, GET /health, POST /search
    and POST /gallery (docs/deploy.md). One process: the gallery lives in its memory."""
    from ..inference import FeatureExtractor
    from ..serve import GalleryService, create_app
    from ..utils.optional import require

    uvicorn = require("uvicorn", "serve")
    fe = FeatureExtractor(checkpoint, device)
    service = GalleryService(index, fe, upload_dir=upload_dir, read_only=read_only)
    app = create_app(service, max_upload_mb=max_upload_mb, max_k=max_k)
    h = service.health()
    console.print(
        f"serving {h['images']} images ({h['visible']} visible, {h['infrared']} infrared, "
        f"{h['index']} index) on http://{host}:{port}/",
        highlight=False,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)
