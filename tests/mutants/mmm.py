"""Mutants of MMM (methods/mmm.py, methods/mmm_plan.py, clustering/multi_memory.py): one
per mechanism of the paper (CMC, MMLM, SCA) and of the official pipeline's stage B."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vireid.clustering import centroids
from vireid.clustering import multi_memory as mm
from vireid.engine import builders, run
from vireid.losses import memory as memory_mod
from vireid.losses import mmd
from vireid.methods import mmm as mmm_mod
from vireid.methods import mmm_plan

from . import mutant

METHOD = "tests/test_mmm_method.py::"
MMM_T = "tests/test_mmm.py::"
CLAIMS = "tests/test_core_claims.py::"
OFFICIAL = "tests/test_mmm_official.py::"
TERMS = "tests/test_mmm_terms.py::"
VIS, IR = 0, 1


def _build_with(mp, **update) -> None:
    """MMM built with these method-config values, whatever the run's config says (a
    mechanism switched off or miswired through its own key)."""
    real = mmm_mod.MMM.__init__

    def build(self, model, cfg):
        real(self, model, cfg.model_copy(update=update))

    mp.setattr(mmm_mod.MMM, "__init__", build)


@mutant(
    "mmm.joint_plain_jaccard",
    "CMC joint clustering: the modality-balanced k-reciprocal expansion replaced by the "
    "plain Jaccard",
    tests=[METHOD + "test_joint_clusters_link_the_modalities_more_than_plain_jaccard"],
    fast=True,
)
def _(mp):
    real = mmm_plan.cluster_labels

    def plain(*a, **k):
        return real(*a, **{**k, "modality": None})

    mp.setattr(mmm_plan, "cluster_labels", plain)


@mutant(
    "mmm.joint_one_modality_kept",
    "CMC: joint clusters of one modality are not filtered (they train L_VR)",
    tests=[
        METHOD + "test_joint_clusters_of_one_modality_are_dropped",
        METHOD + "test_joint_clusters_of_one_modality_can_stay_as_negatives",
    ],
    fast=True,
)
def _(mp):
    real = mmm_plan.joint_labels

    def unfiltered(cfg, feats, labels):
        keep = cfg.model_copy(update={"joint_single_modality": "negatives"})
        joint, _ = real(keep, feats, labels)
        return joint, joint >= 0

    mp.setattr(mmm_plan, "joint_labels", unfiltered)


@mutant(
    "mmm.single_memory",
    "MMLM: one memory per cluster (its centroid) instead of n k-means memories",
    tests=[MMM_T + "test_mmm_matches_with_its_multiple_memories"],
    fast=True,
)
def _(mp):
    real = mmm_plan.cluster_memories

    def one(feats, labels, n=4, n_init=10, seed=0):
        mem, count = real(feats, labels, 1, n_init, seed)
        pad = np.full((len(mem), n, mem.shape[2]), np.nan, np.float32)
        pad[:, :1] = mem
        return pad, np.minimum(count, 1)

    mp.setattr(mmm_plan, "cluster_memories", one)


@mutant(
    "mmm.cost_direction_swapped",
    "MMLM cost: the sum over visible memories (paper) and over infrared memories (code) swapped",
    tests=[MMM_T + "test_cost_directions_on_asymmetric_memories"],
    fast=True,
)
def _(mp):
    real = mm.multi_memory_cost
    swap = {"visible": "infrared", "infrared": "visible", "symmetric": "symmetric"}

    def swapped(mem_v, count_v, mem_r, count_r, direction="visible"):
        return real(mem_v, count_v, mem_r, count_r, swap[direction])

    mp.setattr(mm, "multi_memory_cost", swapped)
    mp.setattr(mmm_plan, "multi_memory_cost", swapped)


@mutant(
    "mmm.greedy_not_hungarian",
    "MMLM assignment: the (progressive) Hungarian replaced by greedy argmin",
    tests=[METHOD + "test_official_matching_options_reach_the_plan"],
    fast=True,
)
def _(mp):
    real = mmm_plan.match_clusters

    def greedy(cost, method="hungarian", skip_last=False):
        return real(cost, "greedy", skip_last)

    mp.setattr(mmm_plan, "match_clusters", greedy)


@mutant(
    "mmm.identity_terms_unmerged",
    "Y^v := QY^r in L_V, the Intra centres and the cross term: visible clusters matched to "
    "one infrared cluster stay separate identities (the many-to-one conflict, review N2)",
    tests=[
        METHOD + "test_merged_visible_clusters_train_as_one_identity",
        METHOD + "test_matched_labels_train_without_the_cross_term",
    ],
    fast=True,
)
def _(mp):
    def unmerged(labels_v, v2r, num_infrared):
        return labels_v.copy(), v2r.copy()

    mp.setattr(mmm_plan, "merge_matched", unmerged)


@mutant(
    "mmm.sampler_per_modality_labels",
    "Y^v := QY^r in the batch sampler: batches drawn by the per-modality clusters",
    tests=[METHOD + "test_sampler_draws_the_matched_identities"],
    fast=True,
)
def _(mp):
    real = mmm_mod.MMM.on_clusters

    def per_modality(self, epoch, feats, labels):
        out = real(self, epoch, feats, labels)
        self.sampling_labels = labels
        return out

    mp.setattr(mmm_mod.MMM, "on_clusters", per_modality)


@mutant(
    "mmm.inter_unmatched_labels",
    "Y^v := QY^r in L_Inter: the infrared samples' identities shifted by one, so the MMD "
    "pairs each visible identity with another person's infrared samples",
    tests=[
        CLAIMS + "test_matched_label_loss_pulls_an_infrared_feature_to_its_matched_visible_cluster"
    ],
    fast=True,
)
def _(mp):
    real = mmd.inter_modality_mmd

    def shifted(feats, labels, is_infrared, second_view=None, form="paper"):
        ids = torch.unique(labels[labels >= 0])
        nxt = {int(a): int(b) for a, b in zip(ids, ids.roll(1), strict=True)}
        moved = labels.clone()
        for i in torch.nonzero(is_infrared & (labels >= 0)).flatten():
            moved[i] = nxt[int(labels[i])]
        return real(feats, moved, is_infrared, second_view, form)

    mp.setattr(mmm_mod, "inter_modality_mmd", shifted)


@mutant(
    "mmm.cross_term_own_labels",
    "Y^v := QY^r in L_Cross (option): each feature against its own-modality identity's row "
    "of the other modality's memory instead of its matched partner",
    tests=[METHOD + "test_matched_labels_enter_the_cross_term"],
    fast=True,
)
def _(mp):
    def own(self, f, m, a):
        terms = []
        for mod, key in ((VIS, "r"), (IR, "v")):
            mem = self.memories[key]
            sel = (m == mod) & (a["intra"] >= 0) & (a["intra"] < mem.num_clusters)
            if sel.any():
                terms.append(mem(f[sel], a["intra"][sel]))
        return torch.stack(terms).mean()

    mp.setattr(mmm_mod.MMM, "_cross", own)


@mutant(
    "mmm.gmm_confidence_ones",
    "SCA: GMM posteriors replaced by ones (no confidence anywhere)",
    tests=[METHOD + "test_gmm_confidences_weight_the_memory_and_the_intra_target"],
    fast=True,
)
def _(mp):
    mp.setattr(mmm_plan, "gmm_confidence", lambda losses, *a, **k: np.ones(len(losses)))


def _plain_centroids(self, feats: dict) -> dict:
    """Each modality's plain centroids of the identities the plan trains on."""
    n_v = len(feats[VIS])
    intra = self._arrays["intra"].cpu().numpy()
    ident = {VIS: intra[:n_v], IR: intra[n_v:]}
    return {m: torch.from_numpy(centroids(feats[m], ident[m])) for m in (VIS, IR)}


@mutant(
    "mmm.memory_init_unweighted",
    "SCA: the memories start from the plain centroids, not Σ w·f / N",
    tests=[METHOD + "test_gmm_confidences_weight_the_memory_and_the_intra_target"],
    fast=True,
)
def _(mp):
    real = mmm_mod.MMM.on_clusters

    def plain(self, epoch, feats, labels):
        out = real(self, epoch, feats, labels)
        for m, cent in _plain_centroids(self, feats).items():
            self.memories["v" if m == VIS else "r"].reset(cent)
        return out

    mp.setattr(mmm_mod.MMM, "on_clusters", plain)


@mutant(
    "mmm.intra_target_unweighted",
    "SCA Intra: the target is the plain centroid, not the confidence-weighted centre",
    tests=[METHOD + "test_gmm_confidences_weight_the_memory_and_the_intra_target"],
    fast=True,
)
def _(mp):
    real = mmm_mod.MMM.on_clusters

    def plain(self, epoch, feats, labels):
        out = real(self, epoch, feats, labels)
        for m, cent in _plain_centroids(self, feats).items():
            self._centres[m] = F.normalize(cent, dim=1).to(self._centres[m].device)
        return out

    mp.setattr(mmm_mod.MMM, "on_clusters", plain)


@mutant(
    "mmm.momentum_unweighted",
    "SCA: the memory's momentum update ignores the confidences",
    tests=[METHOD + "test_memory_update_is_scaled_by_the_confidence"],
    fast=True,
)
def _(mp):
    real = memory_mod.ClusterMemory.update

    def unweighted(self, feats, labels, weights=None):
        return real(self, feats, labels, None)

    mp.setattr(memory_mod.ClusterMemory, "update", unweighted)


@mutant(
    "mmm.inter_no_stop_gradient",
    "SCA Inter: the stop-gradient on the other modality removed (both sides move)",
    tests=[MMM_T + "test_stop_gradient_really_stops_the_gradient"],
    fast=True,
)
def _(mp):
    real_inter, real_kernels = mmd.inter_modality_mmd, mmd.gaussian_kernels
    detach = torch.Tensor.detach

    def kernels(*a, **k):  # the kernel bandwidth keeps its own detach
        torch.Tensor.detach = detach
        try:
            return real_kernels(*a, **k)
        finally:
            torch.Tensor.detach = lambda self: self

    def no_sg(*a, **k):
        torch.Tensor.detach = lambda self: self
        try:
            return real_inter(*a, **k)
        finally:
            torch.Tensor.detach = detach

    mp.setattr(mmd, "gaussian_kernels", kernels)
    mp.setattr(mmd, "inter_modality_mmd", no_sg)
    mp.setattr(mmm_mod, "inter_modality_mmd", no_sg)


@mutant(
    "mmm.start_epochs_ignored",
    "SCA schedule: Intra and Inter from the first epoch, whatever their start epochs",
    tests=[METHOD + "test_intra_and_inter_wait_for_their_start_epochs"],
    fast=True,
)
def _(mp):
    _build_with(mp, intra_start_epoch=1, inter_start_epoch=1)


@mutant(
    "mmm.ce_warmup_skipped",
    "official stage B: no CE-only warm-up (every term from the first epoch)",
    tests=[METHOD + "test_shared_classifier_ce_warm_up_then_confidence_weighted"],
    fast=True,
)
def _(mp):
    _build_with(mp, id_warmup_epochs=0)


@mutant(
    "mmm.soft_id_unweighted",
    "official stage B: the shared classifier's CE ignores the GMM confidences",
    tests=[METHOD + "test_shared_classifier_ce_warm_up_then_confidence_weighted"],
    fast=True,
)
def _(mp):
    def plain(self, f, a):
        ok = a["cls"] >= 0
        return F.cross_entropy(self.classifier(f[ok]), a["cls"][ok])

    mp.setattr(mmm_mod.MMM, "_soft_id", plain)


@mutant(
    "mmm.stage_b_labels_from_own_network",
    "official stage B: the offline labels clustered on the fresh network's features, not stage A's",
    tests=[OFFICIAL + "test_official_chain_runs_end_to_end"],
)
def _(mp):
    def own(cfg, path, device):
        builders.load_checkpoint(path)  # still checks the file exists
        from vireid.models import build_model

        return build_model(cfg.model, 0).to(device).eval()

    mp.setattr(run, "stage_model", own)


@mutant(
    "mmm.mixed_memory_stays_joint",
    "L_VR after the matching (mixed_memory: matched): the mixed memory keeps the joint "
    "clusters, so no L_CMC term reads the matching",
    tests=[TERMS + "test_matched_mixed_memory_lets_the_matching_train_an_infrared_sample"],
    fast=True,
)
def _(mp):
    _build_with(mp, mixed_memory="joint")


@mutant(
    "mmm.classifier_classes_unmatched",
    "official stage B: the shared classifier's infrared classes shifted by one, so a "
    "visible identity's class is another person's infrared class (Y^v := QY^r lost in L_ID)",
    tests=[TERMS + "test_shared_classifier_classes_are_the_matched_identities"],
    fast=True,
)
def _(mp):
    real = mmm_plan.classes

    def rolled(unified):
        out, n = real(unified)
        ir = np.arange(len(out)) >= len(unified[VIS])
        out[ir & (out >= 0)] = (out[ir & (out >= 0)] + 1) % max(n, 1)
        return out, n

    mp.setattr(mmm_plan, "classes", rolled)


@mutant(
    "mmm.joint_term_no_gradient",
    "L_CMC: L_VR is computed and logged but trains nothing (the features reach the mixed "
    "memory detached)",
    tests=[TERMS + "test_mixed_memory_term_trains_the_network"],
    fast=True,
)
def _(mp):
    real = mmm_mod.MMM._use_plan

    def detached(self, p):
        real(self, p)
        if "vr" in self.memories:
            mem = self.memories["vr"]
            forward = mem.forward
            mem.forward = lambda feats, labels: forward(feats.detach(), labels)

    mp.setattr(mmm_mod.MMM, "_use_plan", detached)


@mutant(
    "mmm.mixed_memory_pooled",
    "CMC: the mixed memory starts from each joint cluster's pooled centroid, not the mean "
    "of its two modality means",
    tests=[TERMS + "test_mixed_memory_starts_from_the_mean_of_the_two_modality_means"],
    fast=True,
)
def _(mp):
    real = mmm_plan.sca

    def pooled(cfg, feats, ident, joint):
        p = real(cfg, feats, ident, joint)
        if p["joint_centres"] is not None:
            x = np.concatenate([feats[VIS], feats[IR]])
            p["joint_centres"] = centroids(x, joint).astype(p["joint_centres"].dtype)
        return p

    mp.setattr(mmm_plan, "sca", pooled)


@mutant(
    "mmm.inter_form_ignored",
    "L_Inter: the method always trains the paper form, whatever inter_form says",
    tests=[TERMS + "test_method_trains_the_inter_form_it_is_given"],
    fast=True,
)
def _(mp):
    _build_with(mp, inter_form="paper")


@mutant(
    "mmm.l1_prototypes_one_visible_slot",
    "official L1 Intra: the two visible views share one prototype slot",
    tests=[TERMS + "test_l1_prototypes_keep_the_two_visible_views_apart"],
    fast=True,
)
def _(mp):
    real_l1, real_after = mmm_mod.MMM._intra_l1, mmm_mod.MMM.after_optimizer_step

    def one_slot(self, pool, m, view2, a):
        return real_l1(self, pool, m, torch.zeros_like(view2), a)

    def after(self):
        if self._last is not None:
            f, pool, m, view2, a = self._last
            self._last = (f, pool, m, torch.zeros_like(view2), a)
        return real_after(self)

    mp.setattr(mmm_mod.MMM, "_intra_l1", one_slot)
    mp.setattr(mmm_mod.MMM, "after_optimizer_step", after)


@mutant(
    "mmm.joint_reduce_ignored",
    "L_VR (joint_reduce: per_modality, the official A2): always one mean over both "
    "modalities' rows",
    tests=[TERMS + "test_joint_term_per_modality_sums_a_mean_per_modality"],
    fast=True,
)
def _(mp):
    _build_with(mp, joint_reduce="pooled")
