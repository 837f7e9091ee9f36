"""Clustering for unsupervised VI-ReID: kNN, sparse k-reciprocal Jaccard, DBSCAN, matching,
quality. Stable public API: ``jaccard_distance(feats, k1=30, k2=6) -> csr_matrix`` and
``dbscan(dist, eps, min_samples=4) -> labels``; ECUL's ``emcc_distance`` (same form).
"""

from .dbscan import dbscan, num_clusters, relabel_contiguous
from .emcc import emcc_distance, emcc_labels
from .jaccard import jaccard_distance
from .knn import knn
from .matching import adca_associate, centroids, pgm_cost, progressive_match
from .pseudo_labels import cluster_labels
from .quality import cluster_quality, cross_modality_ari

__all__ = [
    "adca_associate",
    "centroids",
    "cluster_labels",
    "cluster_quality",
    "cross_modality_ari",
    "dbscan",
    "emcc_distance",
    "emcc_labels",
    "jaccard_distance",
    "knn",
    "num_clusters",
    "pgm_cost",
    "progressive_match",
    "relabel_contiguous",
]
