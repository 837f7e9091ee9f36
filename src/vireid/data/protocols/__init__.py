"""Evaluation protocols: named specs and the community's query/gallery lists."""

from .lists import query_gallery
from .spec import ProtocolSpec, get_protocol

__all__ = ["ProtocolSpec", "get_protocol", "list_protocols", "query_gallery"]


def list_protocols() -> list[str]:
    from ...registry import PROTOCOLS

    return PROTOCOLS.names()
