"""Evaluation: community metrics, protocols over trials, re-ranking, features."""

from .evaluator import ProtocolResult, evaluate_protocol
from .ranking import EvalResult, evaluate, evaluate_features
from .rerank import re_ranking, rerank_features

__all__ = [
    "EvalResult",
    "ProtocolResult",
    "evaluate",
    "evaluate_features",
    "evaluate_protocol",
    "re_ranking",
    "rerank_features",
]
