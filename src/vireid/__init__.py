"""vireid: visible-infrared person re-identification.

Stable public API (other tools depend on these names)::

    from vireid import Modality, Sample, evaluate, query_gallery, load_config
    from vireid import FeatureExtractor  # checkpoint → features (docs/deploy.md)
"""

from .config import load_config
from .data.protocols import query_gallery
from .data.records import Modality, Sample
from .evaluation import evaluate, evaluate_features, re_ranking, rerank_features
from .inference import FeatureExtractor

__version__ = "0.1.0"
__all__ = [
    "FeatureExtractor",
    "Modality",
    "Sample",
    "__version__",
    "evaluate",
    "evaluate_features",
    "load_config",
    "query_gallery",
    "re_ranking",
    "rerank_features",
]
