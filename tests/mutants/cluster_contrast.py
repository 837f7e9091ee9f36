"""Mutants of Cluster-Contrast / ADCA / PGM (losses/memory.py, methods/cluster_contrast.py,
clustering/matching.py, the approximate neighbour search of clustering/knn_approx.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from vireid.clustering import knn_approx, matching
from vireid.losses import memory
from vireid.methods import cluster_contrast as cc

from . import mutant, replace

T = "tests/test_cluster_contrast.py::"
VIS, IR = 0, 1


@mutant(
    "cc.memory_frozen",
    "Cluster memory: the momentum update after each optimiser step does nothing (rows stay "
    "at the epoch's centroids)",
    tests=[
        T + "test_a_step_moves_the_batch_clusters_memory_rows_towards_their_samples",
        "tests/test_memory_matching.py::test_mean_update_equals_sequential_hand_computation",
    ],
    fast=True,
)
def _(mp):
    mp.setattr(memory.ClusterMemory, "update", lambda self, feats, labels, weights=None: None)


@mutant(
    "cc.memory_momentum_ignored",
    "Cluster memory: the momentum ignored, a row replaced by its sample (m = 0)",
    tests=["tests/test_memory_matching.py::test_mean_update_equals_sequential_hand_computation"],
    fast=True,
)
def _(mp):
    update = memory.ClusterMemory.update

    def no_momentum(self, feats, labels, weights=None):
        m, self.momentum = self.momentum, 0.0
        try:
            update(self, feats, labels, weights)
        finally:
            self.momentum = m

    mp.setattr(memory.ClusterMemory, "update", no_momentum)


@mutant(
    "cc.hard_rule_is_mean",
    "Cluster memory `hard` (CM_Hard): the update uses every sample in turn, as the mean rule",
    tests=[
        "tests/test_memory_matching.py::test_hard_update_uses_least_similar_sample",
        T + "test_hard_memory_moves_by_the_least_similar_sample_only",
    ],
    fast=True,
)
def _(mp):
    update = memory.ClusterMemory.update

    def as_mean(self, feats, labels, weights=None):
        mode, self.mode = self.mode, "mean"
        try:
            update(self, feats, labels, weights)
        finally:
            self.mode = mode

    mp.setattr(memory.ClusterMemory, "update", as_mean)


@mutant(
    "cc.method_memory_mode_dropped",
    "Cluster-Contrast: method.memory (hard / mean) never reaches the memories it builds",
    tests=[T + "test_hard_memory_moves_by_the_least_similar_sample_only"],
    fast=True,
)
def _(mp):
    build = cc.ClusterContrast._memory

    def mean_memory(self, feats, labels):
        mode, self.memory_mode = self.memory_mode, "mean"
        try:
            return build(self, feats, labels)
        finally:
            self.memory_mode = mode

    mp.setattr(cc.ClusterContrast, "_memory", mean_memory)


class _Shifted(torch.nn.Module):
    """One modality's view of a joint memory: its labels offset past the other's rows."""

    def __init__(self, joint: memory.ClusterMemory, offset: int, n: int) -> None:
        super().__init__()
        self.joint, self.rows = joint, slice(offset, offset + n)
        self.offset = offset

    def forward(self, feats, labels):
        return self.joint(feats, labels + self.offset)

    def update(self, feats, labels, weights=None):
        self.joint.update(feats, labels + self.offset, weights)

    @property
    def features(self):
        return self.joint.features[self.rows]

    @features.setter
    def features(self, value):
        joint = self.joint.features.clone()
        joint[self.rows] = value
        self.joint.features = joint


@mutant(
    "cc.one_joint_memory",
    "Cluster-Contrast: one memory over both modalities' clusters instead of one per "
    "modality (each modality's ClusterNCE also contrasts with the other's clusters)",
    tests=[T + "test_each_modality_trains_against_its_own_memory"],
    fast=True,
)
def _(mp):
    on_clusters = cc.ClusterContrast.on_clusters

    def joint(self, epoch, feats, labels):
        extras = on_clusters(self, epoch, feats, labels)
        mv, mi = self.memories[VIS], self.memories[IR]
        both = memory.ClusterMemory(mv.features.shape[1], 0, mv.temp, mv.momentum, mv.mode)
        both.features = torch.cat([mv.features, mi.features])
        nv, ni = len(mv.features), len(mi.features)
        self.memories = {VIS: _Shifted(both, 0, nv), IR: _Shifted(both, nv, ni)}
        return extras

    mp.setattr(cc.ClusterContrast, "on_clusters", joint)


@mutant(
    "cc.adca_aggregation_dropped",
    "ADCA: the visible memory rows are not blended towards their associated infrared rows",
    tests=[T + "test_adca_pulls_visible_memory_rows_to_their_associated_infrared_cluster"],
    fast=True,
)
def _(mp):
    on_clusters = cc.ClusterContrast.on_clusters

    def unblended(self, epoch, feats, labels):
        extras = on_clusters(self, epoch, feats, labels)
        self.memories[VIS] = self._memory(feats[VIS], labels[VIS])
        return extras

    mp.setattr(cc.ClusterContrast, "on_clusters", unblended)


@mutant(
    "cc.pgm_cost_direction",
    "PGM matching: the cost rewards dissimilar centroids (exp(+cos) instead of exp(-cos))",
    tests=[
        T + "test_pgm_matches_each_visible_cluster_to_its_persons_infrared_cluster",
        "tests/test_memory_matching.py::test_progressive_match_finds_true_partners",
    ],
    fast=True,
)
def _(mp):
    cost = matching.pgm_cost
    replace(mp, matching, "pgm_cost", lambda a, b: 1.0 / cost(a, b))


@mutant(
    "cc.pgm_matching_by_index",
    "PGM matching: clusters paired by their numbers (i ↔ i mod B) instead of by the "
    "Hungarian assignment on the cost",
    tests=[T + "test_pgm_matches_each_visible_cluster_to_its_persons_infrared_cluster"],
    fast=True,
)
def _(mp):
    def by_index(cost):
        a, b = np.asarray(cost).shape
        return np.arange(a) % max(b, 1), np.arange(b) % max(a, 1)

    replace(mp, matching, "progressive_match", by_index)


@mutant(
    "cc.pgm_cross_one_direction",
    "PGM cross term: always visible features against the infrared memory (the odd-epoch "
    "direction, infrared against visible, never used)",
    tests=[
        T + "test_pgm_cross_term_alternates_its_direction_by_epoch[0]",
        T + "test_pgm_cross_term_alternates_its_direction_by_epoch[1]",
    ],
    fast=True,
)
def _(mp):
    step = cc.ClusterContrast.training_step

    def even_epoch(self, batch):
        epoch, self.epoch = self.epoch, 0
        try:
            return step(self, batch)
        finally:
            self.epoch = epoch

    mp.setattr(cc.ClusterContrast, "training_step", even_epoch)


@mutant(
    "cc.cross_weight_zero",
    "PGM: the cross term never trains (method.cross_weight forced to 0)",
    tests=[
        "tests/test_ablation_switches.py::test_switch_is_live"
        "[cluster_contrast:dual memories only (no cross-modality association)]"
    ],
    fast=True,
)
def _(mp):
    init = cc.ClusterContrast.__init__

    def no_cross(self, *a, **k):
        init(self, *a, **k)
        self.cross_weight = 0.0

    mp.setattr(cc.ClusterContrast, "__init__", no_cross)


@mutant(
    "cc.nce_temperature_ignored",
    "ClusterNCE: the temperature tau ignored (logits are plain cosines)",
    tests=["tests/test_memory_matching.py::test_cluster_nce_matches_formula"],
    fast=True,
)
def _(mp):
    forward = memory.ClusterMemory.forward

    def untempered(self, feats, labels):
        temp, self.temp = self.temp, 1.0
        try:
            return forward(self, feats, labels)
        finally:
            self.temp = temp

    mp.setattr(memory.ClusterMemory, "forward", untempered)


@mutant(
    "clustering.hnsw_inner_product_graph",
    "Approximate neighbours (cluster.knn=hnsw): the graph ranks by inner product on the full "
    "features too, where the clustering features' unequal norms make it a different order "
    "from the L2 distance the labels need",
    tests=[
        "tests/test_knn_ann.py::test_hnsw_on_the_full_features_searches_by_l2_when_norms_differ"
    ],
    fast=True,
)
def _(mp):
    search = knn_approx._hnsw_knn
    mp.setattr(
        knn_approx, "_hnsw_knn", lambda x, k, p: search(x, k, dataclasses.replace(p, metric="ip"))
    )
