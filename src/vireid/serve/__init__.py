"""The search service: ``GalleryService`` (uploads, embedding, thread-safe search and
additions, group-committed saves) and ``create_app`` (its FastAPI routes and page)."""

from .app import create_app
from .service import GalleryService, ServiceError, decode_upload

__all__ = ["GalleryService", "ServiceError", "create_app", "decode_upload"]
