"""Records, dataset readers, protocols, synthetic data, transforms, samplers, cache."""

from .records import Modality, Sample

__all__ = ["Modality", "Sample"]
