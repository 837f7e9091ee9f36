"""vireid: visible-infrared person re-identification.

Stable public API (other tools depend on these names)::

    from vireid import Modality, Sample, evaluate, query_gallery, load_config
    from vireid import FeatureExtractor  # checkpoint → features (docs/deploy.md)

The names are imported on first use (``utils/lazy.py``): ``import vireid`` and the
command line's start do not pay for torch until something needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .utils.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "FeatureExtractor": ".inference",
    "Modality": ".data.records",
    "Sample": ".data.records",
    "evaluate": ".evaluation",
    "evaluate_features": ".evaluation",
    "load_config": ".config",
    "query_gallery": ".data.protocols",
    "re_ranking": ".evaluation",
    "rerank_features": ".evaluation",
}
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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what type checkers and IDEs see
    from .config import load_config
    from .data.protocols import query_gallery
    from .data.records import Modality, Sample
    from .evaluation import evaluate, evaluate_features, re_ranking, rerank_features
    from .inference import FeatureExtractor
