"""Mutants of MUN (methods/mun.py, models/auxiliary.py, losses/alignment.py): one per
mechanism the paper claims or the project chose (docs/methods/mun.md)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from vireid.losses import alignment
from vireid.methods import mun as mun_mod
from vireid.models import auxiliary
from vireid.models.two_stream import TwoStreamNet

from . import mutant, replace

T = "tests/test_mun.py::"
W = "tests/test_mun_wiring.py::"
EQS = T + "test_default_generator_is_eqs_1_to_9"
EQ17 = T + "test_total_loss_is_eq_17_with_classifiers_on_the_pooled_features"
EQ14 = T + "test_prototypes_follow_eq_14_and_l_ma_uses_them"
IA_WIRING = W + "test_identity_alignment_reads_its_feature_with_its_margin"
TRAINS = W + "test_alignment_losses_train_the_generator_and_the_backbone"
ROWS_LIVE = W + "test_every_effects_row_changes_the_first_step"


def _with_cfg(mp, name: str, **values):
    """Run ``MUN.<name>`` as if the config held ``values`` (a switch that is ignored)."""
    orig = getattr(mun_mod.MUN, name)

    def patched(self, *a, **k):
        real = self.cfg
        self.cfg = real.model_copy(update=values)
        try:
            return orig(self, *a, **k)
        finally:
            self.cfg = real

    mp.setattr(mun_mod.MUN, name, patched)


# ------------------------------------------------------------------ auxiliary generator
@mutant(
    "mun.iml_bypassed",
    "IML (Eqs. 1-5): the intra-modality learners pass their input through unchanged",
    tests=[EQS],
    fast=True,
)
def _(mp):
    mp.setattr(auxiliary.IntraModalityLearner, "forward", lambda self, x: x)


@mutant(
    "mun.cml_average",
    "CML (Eqs. 6-9): the pyramid, transposed convolutions and fusion replaced by the "
    "visible/infrared average",
    tests=[EQS],
    fast=True,
)
def _(mp):
    mp.setattr(auxiliary.CrossModalityLearner, "forward", lambda self, v, r: 0.5 * (v + r))


@mutant(
    "mun.layer_scales_ignored",
    "I_scale / C_scale (Eqs. 5, 9): the learnable layer scales multiply by 1",
    tests=[EQS],
    fast=True,
)
def _(mp):
    mp.setattr(auxiliary.LayerScale, "forward", lambda self, x: x)


@mutant(
    "mun.generator_fed_exchanged_view",
    "pairing: the generator gets the channel-exchanged second views instead of the first "
    "visible views",
    tests=[W + "test_generator_pairs_each_infrared_image_with_its_first_visible_view"],
    fast=True,
)
def _(mp):
    orig = mun_mod.MUN._pairs

    def last_views(self, labels, modality):
        _, ir = orig(self, labels, modality)
        vis = torch.nonzero(modality == mun_mod.VIS).squeeze(1)
        return vis[-len(ir) :], ir

    mp.setattr(mun_mod.MUN, "_pairs", last_views)


@mutant(
    "mun.generator_at_inference",
    "inference (Fig. 2): the evaluation feature passes the stem maps through the generator",
    tests=[T + "test_inference_ignores_the_generator"],
    fast=True,
)
def _(mp):
    init, stem = mun_mod.MUN.__init__, TwoStreamNet.stem_forward

    def remember(self, model, *a, **k):
        init(self, model, *a, **k)
        object.__setattr__(model, "_mun_generator", self.generator)

    def through_generator(self, images, modality):
        maps = stem(self, images, modality)
        gen = getattr(self, "_mun_generator", None)
        return maps if gen is None or self.training else gen(maps, maps)

    mp.setattr(mun_mod.MUN, "__init__", remember)
    mp.setattr(TwoStreamNet, "stem_forward", through_generator)


# ------------------------------------------------------------------ which rows train what
@mutant(
    "mun.auxiliary_off_still_runs",
    "Table 1's B: with method.auxiliary=false the generator still runs and its rows still "
    "enter the shared stages' and the BNNeck's statistics (the old B row)",
    tests=[W + "test_without_the_auxiliary_modality_nothing_auxiliary_runs"],
    fast=True,
)
def _(mp):
    orig = mun_mod.MUN.forward_rows

    def with_aux(self, batch):
        if self.cfg.auxiliary:
            return orig(self, batch)
        real = self.cfg
        self.cfg = real.model_copy(update={"auxiliary": True})
        try:
            rows = orig(self, batch)
        finally:
            self.cfg = real
        drop = lambda d: {k: v for k, v in d.items() if k != "a"}
        return mun_mod.Rows(*(drop(d) for d in rows))

    mp.setattr(mun_mod.MUN, "forward_rows", with_aux)


@mutant(
    "mun.idc_not_on_aux",
    "L_idc (Eq. 11): the classifiers read visible rows instead of the auxiliary ones",
    tests=[EQ17],
    fast=True,
)
def _(mp):
    def on_visible(self, rows):
        k = len(rows.y["a"])
        return sum(F.cross_entropy(c(rows.cls["v"][:k]), rows.y["a"]) for c in self.classifiers)

    mp.setattr(mun_mod.MUN, "identity_consistency_loss", on_visible)


@mutant(
    "mun.triplet_with_aux_rows",
    "the hard-mining triplet also reads the auxiliary rows (the paper's L_tri is on the "
    "visible and infrared features)",
    tests=[W + "test_triplet_reads_the_pooled_visible_and_infrared_rows"],
    fast=True,
)
def _(mp):
    def with_aux(self, rows):
        feats = torch.cat([rows.z["v"], rows.z["r"], rows.z["a"]])
        y = torch.cat([rows.y["v"], rows.y["r"], rows.y["a"]])
        return mun_mod.batch_hard_triplet(feats, y, self.cfg.triplet_margin)

    mp.setattr(mun_mod.MUN, "triplet_loss", with_aux)


@mutant(
    "mun.triplet_on_bn_feature",
    "the hard-mining triplet reads a batch-normalised feature instead of Z (pre-BN GeM)",
    tests=[W + "test_triplet_reads_the_pooled_visible_and_infrared_rows"],
    fast=True,
)
def _(mp):
    orig = mun_mod.batch_hard_triplet

    def on_bn(feats, labels, margin):
        return orig(F.batch_norm(feats, None, None, training=True), labels, margin)

    mp.setattr(mun_mod, "batch_hard_triplet", on_bn)


@mutant(
    "mun.bnneck_stats_include_aux",
    "classifier_feature=pool: the auxiliary rows enter the BNNeck's running statistics, "
    "which normalise the evaluation feature",
    tests=[T + "test_bnneck_statistics_leave_the_auxiliary_rows_out"],
    fast=True,
)
def _(mp):
    orig = mun_mod.MUN.forward_rows

    def stats_with_aux(self, batch):
        rows = orig(self, batch)
        if self.cfg.classifier_feature == "pool" and "a" in rows.z:
            self.model.bottleneck(torch.cat([rows.z["v"], rows.z["r"], rows.z["a"]]))
        return rows

    mp.setattr(mun_mod.MUN, "forward_rows", stats_with_aux)


@mutant(
    "mun.ida_shared_classifier",
    "L_id^a (Table 1's +Aux row): the visible classifier instead of the auxiliary one",
    tests=[W + "test_l_id_a_trains_its_own_classifier_on_the_auxiliary_rows"],
    fast=True,
)
def _(mp):
    init = mun_mod.MUN.__init__

    def shared(self, *a, **k):
        init(self, *a, **k)
        if self.aux_classifier is not None:
            self.aux_classifier = self.classifiers[0]

    mp.setattr(mun_mod.MUN, "__init__", shared)


# ------------------------------------------------------------------ L_ia (Eq. 12)
@mutant(
    "mun.ia_centres_first_sample",
    "L_ia's centres: the first sample of each identity instead of the mean",
    tests=[T + "test_identity_alignment_is_eq_12"],
    fast=True,
)
def _(mp):
    def first(feats, labels, ids):
        idx = (labels[None, :] == ids[:, None]).float().argmax(1)
        return feats[idx]

    mp.setattr(alignment, "identity_centres", first)


@mutant(
    "mun.ia_margin_hardcoded",
    "L_ia's margin fixed at 0.3 whatever method.ia_margin says",
    tests=[IA_WIRING],
    fast=True,
)
def _(mp):
    orig = mun_mod.identity_alignment_loss
    mp.setattr(
        mun_mod,
        "identity_alignment_loss",
        lambda v, r, a, yv, yr, ya, margin, *x, **k: orig(v, r, a, yv, yr, ya, 0.3, *x, **k),
    )


@mutant(
    "mun.ia_normalize_ignored",
    "L_ia: method.ia_normalize ignored, raw centres always",
    tests=[IA_WIRING],
    fast=True,
)
def _(mp):
    orig = mun_mod.identity_alignment_loss

    def raw(v, r, a, yv, yr, ya, margin, normalize, **k):
        return orig(v, r, a, yv, yr, ya, margin, False, **k)

    mp.setattr(mun_mod, "identity_alignment_loss", raw)


@mutant(
    "mun.ia_feature_ignored",
    "L_ia: method.ia_feature ignored, centres from Z always (where α is never met)",
    tests=[IA_WIRING],
    fast=True,
)
def _(mp):
    _with_cfg(mp, "identity_alignment", ia_feature="pool")


@mutant(
    "mun.ia_inputs_detached",
    "L_ia's inputs detached: it no longer trains the generator or the backbone",
    tests=[TRAINS],
    fast=True,
)
def _(mp):
    orig = mun_mod.identity_alignment_loss

    def detached(v, r, a, *x, **k):
        return orig(v.detach(), r.detach(), a.detach(), *x, **k)

    mp.setattr(mun_mod, "identity_alignment_loss", detached)


# ------------------------------------------------------------------ L_ma (Eqs. 13-16)
@mutant(
    "mun.ma_inputs_detached",
    "L_ma's features detached before W_p: only W_p learns from it",
    tests=[TRAINS],
    fast=True,
)
def _(mp):
    orig = mun_mod.MUN.prototypes_step
    mp.setattr(
        mun_mod.MUN,
        "prototypes_step",
        lambda self, z: orig(self, {k: t.detach() for k, t in z.items()}),
    )


@mutant(
    "mun.ma_no_accumulation",
    "Eq. 14: the previous prototypes are ignored (per-batch prototypes whatever β)",
    tests=[EQ14],
    fast=True,
)
def _(mp):
    mp.setattr(mun_mod, "accumulate_prototypes", lambda current, previous, beta: current)


@mutant(
    "mun.ma_beta_constant",
    "Eq. 14's β schedule: constant at its final value instead of rising from 1e-8",
    tests=[EQ14],
    fast=True,
)
def _(mp):
    mp.setattr(mun_mod.MUN, "beta", lambda self: self.cfg.ma_beta_end)


@mutant(
    "mun.ma_prototypes_ignored",
    "Table 3: method.ma_prototypes=false ignored, L_ma still on the W_p prototypes",
    tests=[W + "test_l_ma_without_prototypes_reads_the_batch_features"],
    fast=True,
)
def _(mp):
    _with_cfg(mp, "modality_alignment", ma_prototypes=True)


@mutant(
    "mun.ma_bridge_ignored",
    "Table 3: method.ma_bridge=false ignored, L_ma still through the auxiliary modality",
    tests=[W + "test_l_ma_without_the_bridge_aligns_visible_and_infrared_prototypes"],
    fast=True,
)
def _(mp):
    _with_cfg(mp, "modality_alignment", ma_bridge=True)


@mutant(
    "mun.mmd_mean_difference",
    "Eq. 16: the Gaussian-kernel MMD replaced by the squared distance of the sample means "
    "(a linear kernel)",
    tests=[T + "test_modality_alignment_is_eqs_15_16"],
    fast=True,
)
def _(mp):
    def mean_gap(x, y, *a, **k):
        return (x.mean(0) - y.mean(0)).square().sum()

    mp.setattr(alignment, "mmd2", mean_gap)


@mutant(
    "mun.ma_sum_over_identities",
    "Eq. 15: L_ma summed over the identities instead of averaged (1/P dropped)",
    tests=[T + "test_modality_alignment_is_eqs_15_16"],
    fast=True,
)
def _(mp):
    orig = alignment.modality_alignment_loss

    def summed(tv, tr, ta, yv, yr, ya):
        present = [p for p in torch.unique(ya) if (yv == p).any() and (yr == p).any()]
        return orig(tv, tr, ta, yv, yr, ya) * max(len(present), 1)

    replace(mp, alignment, "modality_alignment_loss", summed)


@mutant(
    "mun.wp_skipped",
    "Eq. 13: the prototypes are the features themselves (W_p^m not applied)",
    tests=[EQ14],
    fast=True,
)
def _(mp):
    init = mun_mod.MUN.__init__

    def without_wp(self, *a, **k):
        init(self, *a, **k)
        for p in self.prototypes:
            object.__setattr__(p, "forward", lambda x: x)

    mp.setattr(mun_mod.MUN, "__init__", without_wp)


@mutant(
    "mun.wp_frozen",
    "Eq. 13: W_p^m applied but never trained (frozen at the identity)",
    tests=[
        "tests/test_mun_diagnostics.py::test_l_ma_trains_w_p_and_the_losses_train_the_scales_"
        "without_decay"
    ],
    fast=True,
)
def _(mp):
    mp.setattr(mun_mod.MUN, "_prototype_keys", lambda self: "")


@mutant(
    "mun.prototypes_not_checkpointed",
    "Eq. 14's carried prototypes left out of the checkpoint (a resumed run restarts Eq. 13)",
    tests=[EQ14],
    fast=True,
)
def _(mp):
    mp.setattr(mun_mod.MUN, "extra_state", lambda self: {})


# ------------------------------------------------------------------ classifiers, Eq. 17
@mutant(
    "mun.classifiers_shared",
    "Eq. 10: one classifier (C_v) for both modalities instead of C_v and C_r",
    tests=[EQ17],
    fast=True,
)
def _(mp):
    def shared(self, rows):
        cv = self.classifiers[0]
        return sum(F.cross_entropy(cv(rows.cls[k]), rows.y[k]) for k in "vr")

    mp.setattr(mun_mod.MUN, "identity_loss", shared)


@mutant(
    "mun.classifiers_swapped",
    "Eq. 10: C_r classifies the visible rows and C_v the infrared ones",
    tests=[EQ17],
    fast=True,
)
def _(mp):
    def swapped(self, rows):
        cv, cr = self.classifiers
        return F.cross_entropy(cr(rows.cls["v"]), rows.y["v"]) + F.cross_entropy(
            cv(rows.cls["r"]), rows.y["r"]
        )

    mp.setattr(mun_mod.MUN, "identity_loss", swapped)


@mutant(
    "mun.classifiers_bare_linear",
    "classifier_feature=feat: C_v, C_r read Z bare instead of through the BNNeck",
    tests=[EQ17],
    fast=True,
)
def _(mp):
    orig = mun_mod.MUN.forward_rows

    def bare(self, batch):
        rows = orig(self, batch)
        return rows._replace(cls=rows.z)

    mp.setattr(mun_mod.MUN, "forward_rows", bare)


@mutant(
    "mun.eq17_weights_permuted",
    "Eq. 17: γ, θ, σ applied to the wrong terms (L_idc × θ, L_ia × σ, L_ma × γ)",
    tests=[EQ17],
    fast=True,
)
def _(mp):
    orig = mun_mod.MUN.training_step

    def permuted(self, batch):
        real = c = self.cfg
        self.cfg = c.model_copy(
            update={"idc_weight": c.ia_weight, "ia_weight": c.ma_weight, "ma_weight": c.idc_weight}
        )
        try:
            return orig(self, batch)
        finally:
            self.cfg = real

    mp.setattr(mun_mod.MUN, "training_step", permuted)


@mutant(
    "mun.ia_active_counts_all",
    "ia_active: every identity counted as active, whether its margin is met or not",
    tests=[W + "test_ia_active_counts_the_identities_whose_margin_is_not_met"],
    fast=True,
)
def _(mp):
    orig = mun_mod.MUN.training_step

    def all_active(self, batch):
        out = orig(self, batch)
        if "ia_active" in out:
            out["ia_active"] = torch.ones_like(out["ia_active"])
        return out

    mp.setattr(mun_mod.MUN, "training_step", all_active)


# ------------------------------------------------------------------ CML (Eq. 7)
@mutant(
    "mun.cml_tr_per_modality",
    "CML (Eq. 7): each modality's pyramid has transposed convolutions of its own instead "
    "of TR_i shared by visible and infrared",
    tests=[EQS],
    fast=True,
)
def _(mp):
    cml = auxiliary.CrossModalityLearner
    init = cml.__init__

    def own_init(self, *a, **k):
        init(self, *a, **k)
        self.up_r = copy.deepcopy(self.up)
        for up in self.up_r:
            up.reset_parameters()

    def own_forward(self, v, r):
        shared = self.up
        pv = self._pyramid(v)
        self.up = self.up_r
        try:
            pr = self._pyramid(r)
        finally:
            self.up = shared
        s = torch.cat([*pv, *pr], dim=1)
        return self.scale(self.pw(self.bn(s)))

    mp.setattr(cml, "__init__", own_init)
    mp.setattr(cml, "forward", own_forward)
