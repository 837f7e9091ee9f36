"""Mutants of ECUL (methods/ecul.py, clustering/emcc.py, losses/tsmem.py,
losses/grouped_memory.py): one per mechanism of vireid's reading (docs/methods/ecul.md),
each guarded by method-level tests (tests/test_ecul_method.py) or the building block's
oracle."""

from __future__ import annotations

import numpy as np

from vireid.clustering import emcc
from vireid.losses import tsmem
from vireid.losses.grouped_memory import GroupedMemory
from vireid.methods import ecul as ecul_mod

from . import mutant

M = "tests/test_ecul_method.py::"
PLAN = [M + "test_plan_clusters_with_the_cameras_and_the_k3_filter"]


def _detached(loss):
    """Same value, no gradient: a term that is logged but weighs nothing."""
    return loss.detach() + 0 * loss


# ------------------------------------------------------------------------- EMCC


@mutant(
    "ecul.camera_blind_expansion",
    "EMCC's k2 expansion groups the neighbours by modality only (cameras ignored)",
    tests=["tests/test_emcc.py::test_emcc_equals_dense_reference", *PLAN],
    fast=True,
)
def _(mp):
    orig = emcc.group_codes
    mp.setattr(emcc, "group_codes", lambda n, modality=None, camera=None: orig(n, modality))


@mutant(
    "ecul.plan_without_cameras",
    "ECUL's joint clustering is not given the samples' cameras",
    tests=PLAN,
    fast=True,
)
def _(mp):
    orig = ecul_mod.emcc_labels

    def blind(*a, camera=None, camera_search=None, **k):
        return orig(*a, camera=None, camera_search=None, **k)

    mp.setattr(ecul_mod, "emcc_labels", blind)


@mutant(
    "ecul.k3_filter_identity",
    "EMCC's k3 filter keeps every entry of the expanded encoding",
    tests=["tests/test_emcc.py::test_k3_filter_removes_exactly_the_out_of_range_entries", *PLAN],
    fast=True,
)
def _(mp):
    mp.setattr(emcc, "k3_filter", lambda V, knn, k3: V)


@mutant(
    "ecul.plan_without_k3",
    "ECUL's joint clustering runs without the k3 filter",
    tests=PLAN,
    fast=True,
)
def _(mp):
    orig = ecul_mod.emcc_labels
    mp.setattr(
        ecul_mod, "emcc_labels", lambda x, k1, k2, k3, *a, **k: orig(x, k1, k2, None, *a, **k)
    )


# ------------------------------------------------------------- selection, terms


@mutant(
    "ecul.selection_rule_ignored",
    "inter-modality instance selection: every other-modality member of the mixed joint "
    "cluster becomes a positive, whatever the rule",
    tests=[M + "test_instance_selection_keeps_the_nearest_other_modality_member"],
    fast=True,
)
def _(mp):
    orig = ecul_mod.select_instances
    mp.setattr(
        ecul_mod, "select_instances", lambda x, j, ir, rule="nearest", k=4: orig(x, j, ir, "all", k)
    )


@mutant(
    "ecul.instance_term_without_gradient",
    "the instance-level term is computed and logged but trains nothing (as if weighted 0)",
    tests=[M + "test_cross_and_instance_terms_reach_the_gradient"],
    fast=True,
)
def _(mp):
    orig = ecul_mod.instance_nce
    mp.setattr(ecul_mod, "instance_nce", lambda *a, **k: _detached(orig(*a, **k)))


@mutant(
    "ecul.cross_term_without_gradient",
    "the cross-modal ClusterNCE (L_VR) is computed and logged but trains nothing",
    tests=[M + "test_cross_and_instance_terms_reach_the_gradient"],
    fast=True,
)
def _(mp):
    orig = ecul_mod.ECUL._cross_memory

    def cross(self, *a):
        mem = orig(self, *a)
        forward = mem.forward
        mem.forward = lambda f, y: _detached(forward(f, y))
        return mem

    mp.setattr(ecul_mod.ECUL, "_cross_memory", cross)


@mutant(
    "ecul.cross_memory_plain_centroid",
    "cross-modal memory aggregation: one row per joint cluster at the centroid of all its "
    "images, moved by whichever modality is in the batch",
    tests=[
        M + "test_cross_modal_proxy_is_the_two_modalities_average_at_the_epoch_start",
        M + "test_cross_modal_proxy_stays_an_average_under_one_modality_batches",
    ],
    fast=True,
)
def _(mp):
    def plain(self, x, joint, is_ir):
        c = self.cfg
        one = np.zeros(len(joint), np.int64)
        return GroupedMemory.from_features(x, joint, one, c.temp, c.momentum).to(self._device())

    mp.setattr(ecul_mod.ECUL, "_cross_memory", plain)


@mutant(
    "ecul.cross_memory_single_row",
    "cross-modal memory: PCAL's single row (an average only until its first update) "
    "instead of the recomposed modality halves",
    tests=[M + "test_cross_modal_proxy_stays_an_average_under_one_modality_batches"],
    fast=True,
)
def _(mp):
    def single(self, x, joint, is_ir):
        cent = ecul_mod.cross_modal_centres(x, joint, is_ir.astype(bool))
        return self._memory(cent, self.cfg.temp, self.cfg.momentum)

    mp.setattr(ecul_mod.ECUL, "_cross_memory", single)


@mutant(
    "ecul.cross_on_every_joint_cluster",
    "mixed-cluster selection: the cross-modal loss also on single-modality joint clusters",
    tests=[M + "test_cross_loss_only_on_mixed_joint_clusters"],
    fast=True,
)
def _(mp):
    mp.setattr(ecul_mod, "mixed_cluster_mask", lambda joint, is_ir: np.asarray(joint) >= 0)


# ------------------------------------------------------------------------ TSMem


@mutant(
    "ecul.tsmem_stage1_rule_mean",
    "TSMem stage 1's rule (one random member) replaced by the batch mean",
    tests=[
        M + "test_stage1_update_moves_one_camera_row_to_one_batch_member",
        "tests/test_ecul.py::test_tsmem_updates_equal_hand_computed_ones",
    ],
    fast=True,
)
def _(mp):
    orig = tsmem.update_targets

    def targets(x, labels, rule, memory, keys=None):
        return orig(x, labels, "mean" if rule == "random" else rule, memory, keys)

    mp.setattr(tsmem, "update_targets", targets)


@mutant(
    "ecul.tsmem_stage1_one_row_per_cluster",
    "TSMem stage 1 keeps one row per cluster instead of one per (cluster, camera)",
    tests=[M + "test_stage1_keeps_a_row_per_camera_and_stage2_one_row"],
    fast=True,
)
def _(mp):
    orig = ecul_mod.tsmem_stage

    def stage(epoch, cfg):
        return orig(epoch, cfg)[0], "cluster"

    mp.setattr(ecul_mod, "tsmem_stage", stage)


@mutant(
    "ecul.tsmem_stage2_rule_one_member",
    "TSMem stage 2's rule (the batch mean) replaced by the first batch member",
    tests=[M + "test_stage2_update_moves_the_cluster_row_to_the_batch_mean"],
    fast=True,
)
def _(mp):
    import torch

    orig = tsmem.update_targets

    def targets(x, labels, rule, memory, keys=None):
        if rule == "mean":
            return orig(x, labels, "random", memory, torch.arange(len(labels), dtype=x.dtype))
        return orig(x, labels, rule, memory, keys)

    mp.setattr(tsmem, "update_targets", targets)


@mutant(
    "ecul.tsmem_switch_late",
    "TSMem switches one epoch after switch_epoch",
    tests=[M + "test_stage2_update_moves_the_cluster_row_to_the_batch_mean"],
    fast=True,
)
def _(mp):
    orig = ecul_mod.tsmem_stage
    mp.setattr(ecul_mod, "tsmem_stage", lambda epoch, cfg: orig(epoch - 1, cfg))


@mutant(
    "ecul.tsmem_switch_early",
    "TSMem switches one epoch before switch_epoch",
    tests=[
        M + "test_stage1_keeps_a_row_per_camera_and_stage2_one_row",
        M + "test_stage1_update_moves_one_camera_row_to_one_batch_member",
    ],
    fast=True,
)
def _(mp):
    orig = ecul_mod.tsmem_stage
    mp.setattr(ecul_mod, "tsmem_stage", lambda epoch, cfg: orig(epoch + 1, cfg))


@mutant(
    "ecul.tsmem_rule_not_applied",
    "the memory updates ignore the epoch's TSMem rule (Cluster-Contrast's rule always)",
    tests=[
        M + "test_stage1_update_moves_one_camera_row_to_one_batch_member",
        M + "test_stage2_update_moves_the_cluster_row_to_the_batch_mean",
    ],
    fast=True,
)
def _(mp):
    def update(self, mem, feats, labels, groups):
        if isinstance(mem, GroupedMemory):
            mem.update_groups(feats, labels, groups, "sequential")
        else:
            mem.update_with(feats, labels, "sequential")

    mp.setattr(ecul_mod.ECUL, "_update", update)
