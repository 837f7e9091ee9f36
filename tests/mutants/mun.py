"""Mutants of MUN (methods/mun.py, models/auxiliary.py, losses/alignment.py): one per
mechanism the paper claims or the project chose (docs/methods/mun.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vireid.losses import alignment
from vireid.methods import mun as mun_mod
from vireid.models import auxiliary
from vireid.models.two_stream import TwoStreamNet

from . import mutant

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
