"""Networks: the two-stream ResNet, pooling, non-local blocks, weight loading."""

from .two_stream import TwoStreamNet, build_two_stream

__all__ = ["TwoStreamNet", "build_model", "build_two_stream"]


def build_model(cfg, num_classes: int = 0):
    from ..registry import MODELS

    return MODELS.get(cfg.name)(cfg, num_classes)
