"""A stand-in for ImageNet pretraining on the synthetic benchmark.

Every VI-ReID recipe starts from ImageNet weights, which cannot be downloaded here and
would not fit the narrow CPU models anyway. ``vireid pretrain`` trains the backbone on a
visible-only synthetic population whose identities are disjoint from the benchmark's and
writes a weights file that ``model.pretrained`` accepts; ``model.pretrained: synthetic``
builds it on first use and caches it. It is an analogue: real-data recipes use ImageNet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "PretrainSpec": ".spec",
    "ensure_weights": ".cache",
    "pretrain_backbone": ".train",
    "read_summary": ".cache",
    "weights_path": ".cache",
}
__all__ = ["PretrainSpec", "ensure_weights", "pretrain_backbone", "read_summary", "weights_path"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .cache import ensure_weights, read_summary, weights_path
    from .spec import PretrainSpec
    from .train import pretrain_backbone
