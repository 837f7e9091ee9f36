"""Inter-modality instance selection (ECUL, Wu et al., arXiv 2412.19134; vireid's reading,
docs/methods/ecul.md): inside every joint cluster that holds both modalities, each sample
is linked to selected instances of the *other* modality of the same cluster, which become
its positives in the instance-level contrastive loss. Joint clusters of one modality give
no link: they carry no cross-modality evidence (PCAL uses only mixed clusters too).
"""

from __future__ import annotations

import numpy as np

SELECTIONS = ("nearest", "mutual", "all")


def mixed_cluster_mask(joint: np.ndarray, is_infrared: np.ndarray) -> np.ndarray:
    """(N,) bool: the sample's joint cluster holds both modalities (outliers: False)."""
    joint, ir = np.asarray(joint), np.asarray(is_infrared, bool)
    both = np.intersect1d(joint[~ir & (joint >= 0)], joint[ir & (joint >= 0)])
    return np.isin(joint, both)


def select_instances(
    feats: np.ndarray,
    joint: np.ndarray,
    is_infrared: np.ndarray,
    rule: str = "nearest",
    k: int = 4,
) -> np.ndarray:
    """(N, W) int64 indices of each sample's selected other-modality instances, padded
    with −1 (a row of −1: no positive).

    ``feats`` (N, D) clustering features (cosine similarity after normalisation),
    ``joint`` (N,) joint-cluster labels (−1 = outlier), ``is_infrared`` (N,) bool.
    ``nearest``: the k most similar other-modality members of the cluster (W = k);
    ``mutual``: those of them for which the sample is also among their k most similar
    members of its own modality (W = k); ``all``: every other-modality member (W = the
    largest such count). Ties are broken by the smaller index.
    """
    if rule not in SELECTIONS:
        raise ValueError(f"instance selection {rule!r}: expected one of {SELECTIONS}")
    if k < 1:
        raise ValueError(f"instance selection k={k}: expected k >= 1")
    x = np.asarray(feats, np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    joint, ir = np.asarray(joint), np.asarray(is_infrared, bool)
    mixed = mixed_cluster_mask(joint, ir)
    idx = np.flatnonzero(mixed)
    order = idx[np.argsort(joint[idx], kind="stable")]  # members grouped by cluster
    cuts = np.flatnonzero(np.diff(joint[order])) + 1
    groups = np.split(order, cuts) if len(order) else []
    links: dict[int, np.ndarray] = {}
    for members in groups:
        vis, inf = members[~ir[members]], members[ir[members]]
        sim = x[vis] @ x[inf].T  # (|V|, |R|) of one cluster
        for a, b, s in ((vis, inf, sim), (inf, vis, sim.T)):
            if rule == "all":
                top = np.broadcast_to(np.arange(len(b)), (len(a), len(b)))
            else:
                top = np.argsort(-s, axis=1, kind="stable")[:, :k]
            if rule == "mutual":
                back = np.argsort(-s.T, axis=1, kind="stable")[:, :k]  # b's top among a
                keep = (back[top] == np.arange(len(a))[:, None, None]).any(-1)
            else:
                keep = np.ones(top.shape, bool)
            for r, i in enumerate(a):
                links[int(i)] = b[top[r][keep[r]]]
    width = max([len(v) for v in links.values()], default=0)
    out = np.full((len(joint), max(width, 1)), -1, np.int64)
    for i, v in links.items():
        out[i, : len(v)] = v
    return out
