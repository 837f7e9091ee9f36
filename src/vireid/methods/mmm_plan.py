"""MMM's pseudo-label plan (Shi et al., ECCV 2024): what one epoch's clusters imply, as
NumPy arrays — the joint clusters, the multi-memory matching, the identities every
identity term reads, the GMM confidences and the weighted centres. ``MMM.on_clusters``
computes it on rank 0 and broadcasts it, so every rank trains on the same plan.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..clustering import centroids, cluster_labels, pgm_cost, progressive_match
from ..clustering.dbscan import relabel_contiguous
from ..clustering.multi_memory import (
    cluster_memories,
    match_clusters,
    merge_matched,
    multi_memory_cost,
    transfer_labels,
)
from ..clustering.pseudo_labels import build_ann
from ..losses.confidence import gmm_confidence

VIS, IR = 0, 1


def per_sample_nce(
    feats: np.ndarray, labels: np.ndarray, cent: np.ndarray, temp: float
) -> np.ndarray:
    """ClusterNCE loss of every clustered sample against normalised centroids (NaN for
    outliers)."""
    out = np.full(len(feats), np.nan)
    m = labels >= 0
    if m.any():
        f = torch.from_numpy(feats[m]).float()
        c = F.normalize(torch.from_numpy(cent).float(), dim=1)
        logits = F.normalize(f, dim=1) @ c.T / temp
        out[m] = F.cross_entropy(logits, torch.from_numpy(labels[m]), reduction="none").numpy()
    return out


def weighted_centres(feats: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ w·f / N per cluster (divided by the count, as the paper writes it). A cluster
    whose confidences are all ≈ 0 falls back to its plain centroid: its weighted centre
    would be a zero vector, a degenerate memory row and Intra target."""
    cent = centroids(feats * w[:, None], labels)
    dead = np.linalg.norm(cent, axis=1) < 1e-6
    if dead.any():
        cent[dead] = centroids(feats, labels)[dead]
    return cent


def _centroids(feats: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(k, D) centroids of clusters 0..k−1; a cluster without samples here is a zero row."""
    out = np.zeros((k, feats.shape[1]), np.float32)
    if (labels >= 0).any():
        c = centroids(feats, labels)
        out[: len(c)] = c
    return out


def joint_labels(cfg, feats: dict, labels: dict) -> tuple[np.ndarray, np.ndarray]:
    """CMC's joint clusters of the visible + infrared set (modality-balanced Jaccard +
    DBSCAN), numbered 0..K−1 (−1 = outlier), and the (N_v + N_r,) mask of the samples whose
    joint cluster holds both modalities: only those train L_VR (the official
    ``associated_analysis`` feeds only them to the joint loaders). A joint cluster of one
    modality is dropped (``joint_single_modality: drop``) or kept as a memory row that
    acts only as a negative (``negatives``, the official code)."""
    x = np.concatenate([feats[VIS], feats[IR]])
    is_ir = np.r_[np.zeros(len(feats[VIS]), bool), np.ones(len(feats[IR]), bool)]
    joint = cluster_labels(
        x,
        cfg.joint_k1,
        cfg.joint_k2,
        cfg.cluster.eps,
        cfg.cluster.min_samples,
        cfg.cluster.knn_backend,
        modality=is_ir,
        device=cfg.cluster.device,
        ann=build_ann(cfg.cluster),
    )
    both = np.intersect1d(joint[~is_ir], joint[is_ir])
    mixed = np.isin(joint, both[both >= 0])
    if cfg.joint_single_modality == "drop":
        joint = np.where(mixed, joint, -1)
    return relabel_contiguous(joint), mixed


def matched_joint(unified: dict) -> np.ndarray:
    """``mixed_memory: matched``: the mixed memory's rows are the matched identities
    (the summary's "C_V, C_R, C_VR for each cluster p"), numbered 0..K−1 over the
    (N_v + N_r,) samples; −1 for a sample whose identity has no partner in the other
    modality. So L_VR pulls an infrared sample to ½(mean_V + mean_R) of the person it
    was matched to: the matching acts inside L_CMC even without L_Inter."""
    u = np.concatenate([unified[VIS], unified[IR]])
    both = np.intersect1d(unified[VIS], unified[IR])
    return relabel_contiguous(np.where(np.isin(u, both[both >= 0]), u, -1))


def sca(cfg, feats: dict, ident: dict, joint: np.ndarray) -> dict:
    """What depends on the features once the identities are fixed: GMM confidences,
    confidence-weighted centres (memories and Intra targets), the mixed memory's centres
    (the mean of each joint cluster's two modality means; a one-modality cluster kept as
    a negative takes its one mean)."""
    p: dict = {"extras": {}, "conf": {}, "centres": {}, "joint_centres": None}
    for m in (VIS, IR):
        w = np.zeros(len(ident[m]))
        ok = ident[m] >= 0
        if cfg.confidence:
            cent = centroids(feats[m], ident[m])
            w[ok] = gmm_confidence(per_sample_nce(feats[m], ident[m], cent, cfg.temp)[ok])
        else:
            w[ok] = 1.0
        p["conf"][m] = w
        p["centres"][m] = weighted_centres(feats[m], ident[m], w)
        tag = "visible" if m == VIS else "infrared"
        p["extras"][f"{tag}_confidence"] = float(w[ok].mean())
    nv, k = len(ident[VIS]), int(joint.max()) + 1
    if k > 0:
        jv, jr = _centroids(feats[VIS], joint[:nv], k), _centroids(feats[IR], joint[nv:], k)
        # rows normalise later, so ½(v + r) and a lone modality's mean need no count
        p["joint_centres"] = 0.5 * (jv + jr)
    return p


def merged_fraction(v2r: np.ndarray) -> float:
    """The fraction of visible clusters that share their infrared partner with another
    visible cluster (merged into one identity by Y^v := QY^r): the progressive Hungarian's
    surplus passes attach them with no cost gate, so a wrong attachment pulls two persons
    together in L_V and Intra (review D6)."""
    hit = v2r[v2r >= 0]
    if len(hit) == 0:
        return 0.0
    return float((np.bincount(hit)[hit] > 1).sum() / len(v2r))


def classes(unified: dict) -> tuple[np.ndarray, int]:
    """The shared classifier's class of every sample (visible then infrared): the unified
    identities numbered 0..C−1 over both modalities (−1 kept), and C."""
    u = np.concatenate([unified[VIS], unified[IR]])
    out = np.full(len(u), -1, np.int64)
    ok = u >= 0
    ids, out[ok] = np.unique(u[ok], return_inverse=True)
    return out, len(ids)


def make_plan(cfg, epoch: int, feats: dict, labels: dict) -> dict:
    """The plan of one epoch (0-based ``epoch``).

    ``ident`` holds the identity of every sample that the identity terms read (L_V, L_R,
    the Intra centres, the cross term): the clusters before the first matching; after
    it, Y^v := QY^r — visible clusters matched to one infrared cluster are one identity
    with one memory row and one centre (``merge_matched``), so no term treats a merged
    partner as a negative. ``partner`` maps each visible identity to its infrared cluster
    (one-to-one). ``unified`` are the person ids shared by both modalities (sampler,
    L_Inter, triplet, L1 prototypes), ``classes`` their shared-classifier classes."""
    nv = len(labels[VIS])
    matching = cfg.mmlm and epoch + 1 >= cfg.match_start_epoch
    joint = np.full(nv + len(labels[IR]), -1, np.int64)
    mixed = np.zeros(len(joint), bool)
    # after the matching, `mixed_memory: matched` indexes L_VR by the matched identities:
    # the joint clustering would go unused
    by_match = cfg.use_joint and matching and cfg.mixed_memory == "matched"
    if cfg.use_joint and not by_match:
        joint, mixed = joint_labels(cfg, feats, labels)
    p: dict = {"joint": joint, "joint_train": np.where(mixed, joint, -1)}
    p.update(ident=dict(labels), partner=None, classes=None, num_classes=0)
    p["unified"] = {VIS: labels[VIS], IR: labels[IR]}
    p["v2r"] = p["v2r_single"] = None
    if matching:
        mv, cv = cluster_memories(feats[VIS], labels[VIS], cfg.num_memories, cfg.kmeans_n_init)
        mr, cr = cluster_memories(feats[IR], labels[IR], cfg.num_memories, cfg.kmeans_n_init)
        cost = multi_memory_cost(mv, cv, mr, cr, cfg.cost)
        p["v2r"] = match_clusters(cost, cfg.matching, cfg.compat_skip_last_cluster)
        p["unified"] = dict(
            zip((VIS, IR), transfer_labels(labels[VIS], labels[IR], p["v2r"]), strict=True)
        )
        p["ident"][VIS], p["partner"] = merge_matched(labels[VIS], p["v2r"], len(cr))
        p["classes"], p["num_classes"] = classes(p["unified"])
        p["merged"] = merged_fraction(p["v2r"])
        # single-memory (centroid) matching on the same features, for the diagnostic
        p["v2r_single"] = progressive_match(
            pgm_cost(centroids(feats[VIS], labels[VIS]), centroids(feats[IR], labels[IR]))
        )[0]
        if by_match:
            joint = p["joint"] = p["joint_train"] = matched_joint(p["unified"])
    p.update(sca(cfg, feats, p["ident"], joint))
    if p["v2r"] is not None:
        p["extras"]["merged_visible_fraction"] = p.pop("merged")
    if cfg.use_joint:
        p["extras"]["joint_clusters"] = float(len(np.unique(joint[joint >= 0])))
    return p
