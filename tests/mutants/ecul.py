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

from . import mutant, replace

M = "tests/test_ecul_method.py::"
PLAN = [M + "test_plan_clusters_with_the_cameras_and_the_k3_filter"]


def _detached(loss):
    """Same value, no gradient: a term that is logged but weighs nothing."""
    return loss.detach() + 0 * loss


# ------------------------------------------------------------------------- EMCC


def _stage1_memory_with(mp, **attrs) -> None:
    """ECUL's stage-1 (camera-row) memories built, then these attributes overwritten."""
    orig = ecul_mod.ECUL._intra_memory

    def intra(self, *a, **k):
        mem = orig(self, *a, **k)
        if isinstance(mem, GroupedMemory):
            for name, value in attrs.items():
                setattr(mem, name, value)
        return mem

    mp.setattr(ecul_mod.ECUL, "_intra_memory", intra)


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


@mutant(
    "ecul.search_k3_range_camera_blind",
    "camera_rule search, k3_range camera: the k3 range ignores the cameras (the global "
    "k3 list again)",
    tests=["tests/test_emcc.py::test_camera_k3_range_keeps_the_search_s_inter_camera_neighbours"],
    fast=True,
)
def _(mp):
    from vireid.clustering import camera_search

    orig = camera_search.camera_range
    replace(mp, camera_search, "camera_range", lambda x, camera, k3: orig(x, 0 * camera, k3))


@mutant(
    "ecul.plan_drops_k3_range",
    "ECUL's plan builds the camera search without its k3_range (always global)",
    tests=PLAN,
    fast=True,
)
def _(mp):
    orig = ecul_mod.CameraSearch

    def search(k3_range="global", **k):
        return orig(**k)

    mp.setattr(ecul_mod, "CameraSearch", search)


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


def _after_on_clusters(mp, change):
    """Patch ``ECUL.on_clusters`` to run ``change(method)`` on the epoch's state."""
    orig = ecul_mod.ECUL.on_clusters

    def on_clusters(self, *a, **k):
        out = orig(self, *a, **k)
        change(self)
        return out

    mp.setattr(ecul_mod.ECUL, "on_clusters", on_clusters)


@mutant(
    "ecul.stage1_rows_by_modality",
    "TSMem stage 1: the update picks a sample's row by its modality code instead of its "
    "camera (the infrared rows never move; visible samples move the camera-code-0 row)",
    tests=[M + "test_stage1_update_moves_each_samples_own_camera_row_in_both_modalities"],
    fast=True,
)
def _(mp):
    # without the epoch's camera codes, the update falls back to the modality
    _after_on_clusters(mp, lambda self: self._arrays.pop("camera", None))


@mutant(
    "ecul.stage1_set_read_as_mean_proxy",
    "TSMem stage 1: the camera rows are read as one normalised mean proxy, not as a set",
    tests=[M + "test_stage1_scores_a_cluster_from_its_camera_rows_by_the_read"],
    fast=True,
)
def _(mp):
    _stage1_memory_with(mp, compose="mean")


@mutant(
    "ecul.camera_read_ignored",
    "TSMem stage 1: tsmem.camera_read is ignored (always log-mean-exp)",
    tests=[
        M + "test_stage1_scores_a_cluster_from_its_camera_rows_by_the_read",
        M + "test_stage1_log_mean_exp_pulls_to_the_own_camera_row_and_mean_to_every_row",
    ],
    fast=True,
)
def _(mp):
    _stage1_memory_with(mp, read="log_mean_exp")


@mutant(
    "ecul.instance_memory_frozen",
    "the instance memory is never updated (its rows stay the epoch-start features)",
    tests=[M + "test_instance_memory_moves_each_batch_samples_row_by_its_momentum"],
    fast=True,
)
def _(mp):
    def freeze(self):
        self.memories["instance"].update = lambda feats, labels: None

    _after_on_clusters(mp, freeze)


@mutant(
    "ecul.cross_terms_from_epoch_one",
    "cross_start_epoch is ignored: the cross-modal and instance terms run from epoch 1",
    tests=[M + "test_cross_terms_start_at_cross_start_epoch"],
    fast=True,
)
def _(mp):
    mp.setattr(ecul_mod.ECUL, "_cross_active", lambda self: True)


@mutant(
    "ecul.instance_term_reads_intra_ids",
    "the instance term's denominator leaves out the sample's intra-modality cluster "
    "instead of its joint cluster",
    tests=[M + "test_instance_term_leaves_out_the_joint_cluster_not_the_intra_cluster"],
    fast=True,
)
def _(mp):
    orig = ecul_mod.ECUL.training_step

    def training_step(self, batch):
        arrays = self._arrays
        self._arrays = {**arrays, "joint": arrays["intra"]}  # only the instance term reads it
        try:
            return orig(self, batch)
        finally:
            self._arrays = arrays

    mp.setattr(ecul_mod.ECUL, "training_step", training_step)
