"""``vireid serve INDEX CHECKPOINT [--host 127.0.0.1 --port 8000] [--token …]``."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import typer

from .common import console, err_console, friendly_errors

WILDCARDS = ("", "0.0.0.0", "::")
MAX_CONNECTIONS = 64  # uvicorn answers 503 beyond: bounds the request bodies held at once


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) reaches this machine only."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if host == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def default_hosts(host: str) -> list[str]:
    """The Host names accepted when ``--allowed-host`` is not given."""
    from ..serve.guard import LOOPBACK_HOSTS

    names = list(LOOPBACK_HOSTS)
    if host in WILDCARDS:
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(host.strip("[]"))
    return list(dict.fromkeys(n.lower() for n in names))


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one line saying why not (before anything is announced)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


@friendly_errors
def serve_cmd(
    index: Path = typer.Argument(..., help="index file written by `vireid index`"),
    checkpoint: Path = typer.Argument(..., help="the checkpoint that built the index"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, min=0, max=65535, help="port to listen on"),
    token: str = typer.Option(
        None,
        envvar="VIREID_TOKEN",
        help="API token (≥ 16 characters) required for POST /gallery: `Authorization: "
        "Bearer <token>`; needed to listen beyond loopback",
    ),
    token_reads: bool = typer.Option(False, help="require the token for searches too"),
    insecure: bool = typer.Option(
        False, help="listen beyond loopback without a token (behind a proxy that authenticates)"
    ),
    allowed_host: list[str] = typer.Option(
        None, help="a Host name clients use, besides loopback and --host (repeatable; * any)"
    ),
    cors_origin: list[str] = typer.Option(
        None, help="a web origin allowed to call the API, e.g. https://app.example (repeatable)"
    ),
    docs: bool = typer.Option(False, help="serve the OpenAPI pages at /docs"),
    device: str = typer.Option(None, help="cpu, cuda, auto (default: the checkpoint's)"),
    upload_dir: Path = typer.Option(
        None, help="where POST /gallery stores pictures (default: `<index>_uploads/`)"
    ),
    read_only: bool = typer.Option(
        False, help="refuse POST /gallery (and leave the file unlocked)"
    ),
    max_upload_mb: float = typer.Option(10.0, help="largest accepted upload (MB, up to 1024)"),
    max_pixels: int = typer.Option(40_000_000, min=1, help="largest accepted image (pixels)"),
    max_decodes: int = typer.Option(2, min=1, help="uploads decoded at once"),
    pixel_budget: int = typer.Option(
        None, min=1, help="pixels decoded at once, all uploads together (default: --max-pixels)"
    ),
    max_k: int = typer.Option(100, min=1, help="largest k a search may ask for"),
    log_level: str = typer.Option("info", help="uvicorn's: warning hides the access log"),
) -> None:
    """Serve cross-modality search over INDEX: a web page at /, GET /health, POST /search
    and POST /gallery (docs/deploy.md). One process: the gallery lives in its memory, and
    it holds INDEX's lock (one writer at a time) unless --read-only."""
    from ..inference import FeatureExtractor
    from ..serve import GalleryService, create_app
    from ..serve.decode import limit_heap_growth
    from ..utils.optional import require

    uvicorn = require("uvicorn", "serve")
    exposed = not is_loopback(host)
    if exposed and not token and not insecure:
        raise ValueError(
            f"--host {host or '(all)'} reaches beyond this machine and the service has no "
            "token: set --token (or VIREID_TOKEN), or pass --insecure behind a proxy that "
            "authenticates"
        )
    if token_reads and not token:
        raise ValueError("--token-reads needs --token (or VIREID_TOKEN)")
    limit_heap_growth()  # before any worker thread has a malloc arena: serve/decode.py
    fe = FeatureExtractor(checkpoint, device)
    with GalleryService(index, fe, upload_dir=upload_dir, read_only=read_only) as service:
        hosts = list(dict.fromkeys([*default_hosts(host), *(allowed_host or [])]))
        app = create_app(
            service,
            max_upload_mb=max_upload_mb,
            max_k=max_k,
            max_pixels=max_pixels,
            max_decodes=max_decodes,
            pixel_budget=pixel_budget,
            token=token,
            token_reads=token_reads,
            allowed_hosts=hosts,
            cors_origins=cors_origin or (),
            docs=docs,
        )
        sock = bind(host, port)
        h = service.health()
        shown = f"[{host}]" if ":" in host else host
        console.print(
            f"serving {h['images']} images ({h['visible']} visible, {h['infrared']} infrared, "
            f"{h['index']} index) on http://{shown}:{sock.getsockname()[1]}/ "
            f"(Host names: {', '.join(hosts)})",
            highlight=False,
        )
        if host in WILDCARDS:
            err_console.print(
                f"[bold yellow]warning:[/] listening on every interface ({host or 'all'}); "
                + (
                    "anyone who reaches this machine can search and add"
                    if not token
                    else "writes need the token" + ("" if token_reads else ", searches do not")
                ),
                highlight=False,
            )
        elif exposed and not token:
            err_console.print(
                f"[bold yellow]warning:[/] {host} is reachable from other machines and "
                "--insecure turned the token off",
                highlight=False,
            )
        config = uvicorn.Config(app, log_level=log_level, limit_concurrency=MAX_CONNECTIONS)
        uvicorn.Server(config).run(sockets=[sock])
