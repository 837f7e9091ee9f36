"""Loss functions; each is tested against a brute-force expression."""

from .triplet import (
    adp_triplet,
    batch_hard_triplet,
    pairwise_euclidean,
    weighted_regularized_triplet,
)

__all__ = [
    "adp_triplet",
    "batch_hard_triplet",
    "pairwise_euclidean",
    "weighted_regularized_triplet",
]
