"""The search service: ``GalleryService`` (embedding, thread-safe search and additions,
group-committed saves, the index file's lock), ``Decoder`` (uploads decoded within
memory budgets) and ``create_app`` (its FastAPI routes, page and access controls)."""

from .app import create_app
from .decode import Decoder, ServiceError, Upload, decode_upload
from .service import GalleryService

__all__ = ["Decoder", "GalleryService", "ServiceError", "Upload", "create_app", "decode_upload"]
