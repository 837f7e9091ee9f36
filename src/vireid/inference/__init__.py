"""Inference outside training: ``FeatureExtractor`` (checkpoint → features) and the ONNX
export of the same computation."""

from .extractor import FeatureExtractor

__all__ = ["FeatureExtractor"]
