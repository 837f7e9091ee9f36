"""Gallery indexing and search for practitioners: which images to embed (``images``),
how they are indexed (``ann``: flat, IVF, HNSW) and the persisted, appendable gallery
index (``index``)."""

from .ann import IndexSpec
from .images import check_images, collect_images, protocol_images
from .index import GalleryIndex, IndexFile, Match

__all__ = [
    "GalleryIndex",
    "IndexFile",
    "IndexSpec",
    "Match",
    "check_images",
    "collect_images",
    "protocol_images",
]
