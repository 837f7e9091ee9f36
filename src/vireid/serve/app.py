"""The HTTP face of ``GalleryService`` (FastAPI; the ``serve`` extra).

Routes: ``GET /`` a search page, ``GET /health``, ``POST /search`` (multipart ``image``,
``modality``, ``k``, ``any_modality``), ``POST /gallery`` (multipart ``images`` —
repeatable —, ``modality``, ``camera``, ``pid``), ``GET /gallery/{row}/thumbnail``.
An answer names a gallery image by its ``row`` in the index and its ``file``; ``pid`` is
its identity (−1 unknown), as everywhere in vireid ("id" in tables and pages).
Every refusal is a 4xx JSON ``{"error": "..."}`` naming the field and what was expected;
no answer shows a server path (entries carry their file name, not its folder).
``guard.Guard`` applies the access controls before a body is read; ``decode.Decoder``
bounds the memory of decoding. Endpoints are plain functions, so FastAPI runs them on
its thread pool and a slow request never blocks ``/health``.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at
# run time, and the names they use are imported inside ``create_app``
import math
from importlib import resources
from pathlib import PurePath

from ..data.records import Modality, Sample
from ..utils.logging import get_logger
from ..utils.optional import require
from .decode import Decoder, ServiceError
from .service import GalleryService, check_labels

MB = 2**20
MAX_UPLOAD_MB = 1024  # what --max-upload-mb may be set to
log = get_logger(__name__)


def _entry(row: int, s: Sample) -> dict:
    return {
        "row": row,
        "file": PurePath(s.path).name,
        "modality": s.modality.value,
        "camera": s.camid,
        "pid": s.pid,
        "thumbnail": f"/gallery/{row}/thumbnail",
    }


def _modality(value: str) -> Modality:
    try:
        return Modality.parse(value)
    except ValueError as e:
        raise ServiceError(422, f"modality: {e}") from None


def create_app(
    service: GalleryService,
    *,
    max_upload_mb: float = 10.0,
    max_k: int = 100,
    max_pixels: int = 40_000_000,
    max_decodes: int = 2,
    pixel_budget: int | None = None,
    token: str | None = None,
    token_reads: bool = False,
    allowed_hosts=None,
    cors_origins=(),
    docs: bool = False,
):
    """A FastAPI app over ``service``. Uploads over ``max_upload_mb`` or ``max_pixels``
    are refused (413), ``k`` must lie in 1..``max_k``; ``max_decodes`` and
    ``pixel_budget`` bound decoding (``decode.Decoder``); ``token``, ``token_reads``,
    ``allowed_hosts`` (default: the loopback names), ``cors_origins``: ``guard.Guard``;
    ``docs``: serve the OpenAPI pages at ``/docs``."""
    fastapi = require("fastapi", "serve")
    require("python_multipart", "serve")  # FastAPI's form parser
    from fastapi import File, Form, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    from .guard import LOOPBACK_HOSTS, Guard, Policy

    if not (math.isfinite(max_upload_mb) and 0 < max_upload_mb <= MAX_UPLOAD_MB):
        raise ValueError(
            f"--max-upload-mb {max_upload_mb:g}: expected a number of MB above 0, at most "
            f"{MAX_UPLOAD_MB}"
        )
    if token is not None and len(token) < 16:
        raise ValueError("--token: use at least 16 characters (e.g. `openssl rand -hex 32`)")
    limit = int(max_upload_mb * MB)
    decoder = Decoder(
        (service.extractor.height, service.extractor.width),
        max_pixels=max_pixels,
        max_decodes=max_decodes,
        pixel_budget=pixel_budget,
    )
    urls = {"docs_url": "/docs", "openapi_url": "/openapi.json"} if docs else {}
    app = fastapi.FastAPI(
        title="vireid",
        summary="cross-modality person search",
        **{"docs_url": None, "redoc_url": None, "openapi_url": None, **urls},
    )
    policy = Policy(
        max_body=limit + MB,  # room for the form around the upload
        allowed_hosts=tuple(allowed_hosts or LOOPBACK_HOSTS),
        cors_origins=tuple(cors_origins),
        token=token,
        token_reads=token_reads,
        read_only=service.read_only,
    )
    app.add_middleware(Guard, policy=policy)
    page = resources.files("vireid.serve").joinpath("page.html").read_text()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(ServiceError)
    def _service_error(request, exc: ServiceError):
        return error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            field = ".".join(str(x) for x in e["loc"] if x not in ("body", "query", "path"))
            got = "" if e["type"] == "missing" else f" (got {repr(e.get('input'))[:60]})"
            parts.append(f"{field}: {e['msg']}{got}")
        return error(422, "; ".join(parts))

    @app.exception_handler(HTTPException)
    def _http(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    def _crash(request, exc: Exception):  # logged, answered without details, and it goes on
        log.error("%s %s failed: %r", request.method, request.url.path, exc)
        return error(500, f"internal error ({type(exc).__name__}); the service's log has more")

    def read(up: UploadFile, field: str):
        data = up.file.read(limit + 1)
        name = f"{field} {up.filename!r}"
        if len(data) > limit:
            raise ServiceError(413, f"{name}: larger than the {max_upload_mb:g} MB upload limit")
        return decoder(data, name)

    @app.get("/", response_class=HTMLResponse)
    def index_page():
        return page

    @app.get("/health")
    def health():
        return service.health()

    @app.post("/search")
    def search(
        image: UploadFile = File(..., description="the query picture (JPEG, PNG or BMP)"),
        modality: str = Form(..., description="the query's modality: visible | infrared"),
        k: int = Form(10, description="how many matches"),
        any_modality: bool = Form(False, description="search both modalities"),
    ):
        mod = _modality(modality)
        if not 1 <= k <= max_k:
            raise ServiceError(422, f"k: {k} is out of range; expected 1 to {max_k}")
        matches = service.search(read(image, "image"), mod, k, not any_modality)
        other = "all" if any_modality else ("infrared" if mod is Modality.VISIBLE else "visible")
        return {
            "query": {"modality": mod.value, "searched": other, "k": k},
            "results": [
                {"rank": m.rank, "similarity": m.similarity, **_entry(m.row, m.sample)}
                for m in matches
            ],
        }

    @app.post("/gallery")
    def add(
        images: list[UploadFile] = File(..., description="pictures to add (repeatable)"),
        modality: str = Form(..., description="their modality: visible | infrared"),
        camera: int = Form(0, description="their camera number (0 or more)"),
        pid: int = Form(-1, description="their identity, -1 if unknown"),
    ):
        if service.read_only:  # before any upload is decoded
            raise ServiceError(403, "this service is read-only (started with --read-only)")
        mod = _modality(modality)
        check_labels(camera, pid)
        uploads = [read(up, "images") for up in images]
        added = service.add(uploads, mod, camera, pid)
        return {
            "added": [{**_entry(a.row, a.sample), "new": a.new} for a in added],
            "images": service.health()["images"],
        }

    @app.get("/gallery/{row}/thumbnail")
    def thumbnail(row: int):
        path = service.image_path(row)
        try:
            return Response(decoder.thumbnail(path, 128), media_type="image/jpeg")
        except ServiceError as e:
            if e.status == 503:  # busy: worth a retry
                raise
            log.warning("thumbnail of gallery image %d (%s): %s", row, path, e)
            raise ServiceError(404, f"gallery image {row}: its file cannot be read") from None

    return app
