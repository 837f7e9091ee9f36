"""Gallery indexing and search for practitioners: which images to embed
(``images``), and nearest-neighbour search over a features file (``index``)."""

from .images import collect_images, protocol_images
from .index import GalleryIndex, Match

__all__ = ["GalleryIndex", "Match", "collect_images", "protocol_images"]
