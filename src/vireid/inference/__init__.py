"""Inference outside training: ``FeatureExtractor`` (checkpoint → features) and the ONNX
export of the same computation."""

from .extractor import FeatureExtractor, as_items, as_rgb

__all__ = ["FeatureExtractor", "as_items", "as_rgb"]
