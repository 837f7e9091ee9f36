"""The HTTP face of ``GalleryService`` (FastAPI; the ``serve`` extra).

Routes: ``GET /`` a search page, ``GET /health``, ``POST /search`` (multipart ``image``,
``modality``, ``k``, ``any_modality``), ``POST /gallery`` (multipart ``images`` —
repeatable —, ``modality``, ``camera``, ``pid``), ``GET /gallery/{id}/thumbnail``.
Every refusal is a 4xx JSON ``{"error": "..."}`` naming the field and what was expected;
endpoints are plain functions, so FastAPI runs them on its thread pool and a slow
request never blocks ``/health``.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at
# run time, and the names they use are imported inside ``create_app``
from importlib import resources

from ..data.records import Modality, Sample
from ..utils.logging import get_logger
from ..utils.optional import require
from .service import GalleryService, ServiceError, decode_upload

MB = 2**20
log = get_logger(__name__)


def _entry(row: int, s: Sample) -> dict:
    return {
        "id": row,
        "path": s.path,
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
):
    """A FastAPI app over ``service``; uploads over ``max_upload_mb`` or ``max_pixels``
    are refused (413), ``k`` must lie in 1..``max_k``."""
    fastapi = require("fastapi", "serve")
    require("python_multipart", "serve")  # FastAPI's form parser
    from fastapi import File, Form, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    limit = int(max_upload_mb * MB)
    app = fastapi.FastAPI(title="vireid", summary="cross-modality person search")
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
            got = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"
            parts.append(f"{field}: {e['msg']}{got}")
        return error(422, "; ".join(parts))

    @app.exception_handler(HTTPException)
    def _http(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    def _crash(request, exc: Exception):  # logged, answered, and the service goes on
        log.error("%s %s failed: %r", request.method, request.url.path, exc)
        return error(500, f"internal error ({type(exc).__name__}: {exc})")

    @app.middleware("http")
    async def _refuse_large_bodies(request, call_next):
        # before the body is read: a declared size over the limit (+ room for the form)
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > limit + MB:
            return error(
                413,
                f"request of {int(size) / MB:.1f} MB; uploads are limited to "
                f"{max_upload_mb:g} MB (--max-upload-mb)",
            )
        return await call_next(request)

    def read(up: UploadFile, field: str):
        data = up.file.read(limit + 1)
        name = f"{field} {up.filename!r}"
        if len(data) > limit:
            raise ServiceError(413, f"{name}: larger than the {max_upload_mb:g} MB upload limit")
        return decode_upload(data, name, max_pixels)

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
        camera: int = Form(0, description="their camera number"),
        pid: int = Form(-1, description="their identity, -1 if unknown"),
    ):
        mod = _modality(modality)
        uploads = [read(up, "images") for up in images]
        added = service.add(uploads, mod, camera, pid)
        return {
            "added": [{**_entry(a.row, a.sample), "new": a.new} for a in added],
            "images": service.health()["images"],
        }

    @app.get("/gallery/{row}/thumbnail")
    def thumbnail(row: int):
        from ..report.html import thumbnail_jpeg

        path = service.image_path(row)
        try:
            return Response(thumbnail_jpeg(path, 128), media_type="image/jpeg")
        except ValueError as e:
            raise ServiceError(404, f"gallery image {row}: {e}") from None

    return app
