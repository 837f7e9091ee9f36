"""Mutants of MAUM (methods/maum.py, losses/proxy.py, the keep_fraction wiring in
engine/run.py): one per mechanism the abstract names, each removed at run time."""

from __future__ import annotations

import torch

from vireid.data import imbalance as imbalance_mod
from vireid.engine import run as run_mod
from vireid.methods import maum as maum_mod
from vireid.methods.base import Method

from . import mutant

T = "tests/test_maum.py::"
PAIRING = T + "test_unidirectional_terms_pair_each_modality_with_the_other_proxies"
STATIC = T + "test_unidirectional_terms_do_not_move_the_proxies"


@mutant(
    "maum.ms_proxies_shared",
    "MS-Proxies: both modalities' images train the visible proxies (no per-modality proxies)",
    tests=[STATIC],
    fast=True,
)
def _(mp):
    mp.setattr(maum_mod.MAUM, "own_proxies", lambda self, modality: self.proxies[maum_mod.VIS])


@mutant(
    "maum.ir_to_own_proxies",
    "unidirectional metric IR image → RGB proxy: infrared features pulled to the infrared "
    "proxies instead",
    tests=[PAIRING],
    fast=True,
)
def _(mp):
    mp.setitem(maum_mod.COUNTERPART, maum_mod.IR, maum_mod.IR)


@mutant(
    "maum.vis_to_own_proxies",
    "unidirectional metric RGB image → IR proxy: visible features pulled to the visible "
    "proxies instead",
    tests=[PAIRING],
    fast=True,
)
def _(mp):
    mp.setitem(maum_mod.COUNTERPART, maum_mod.VIS, maum_mod.VIS)


def _live_current(modality: int):
    """``references`` whose current ``modality`` proxies are not detached (gradient flows)."""
    real = maum_mod.MAUM.references

    def references(self, m):
        refs = real(self, m)
        return [self.proxies[m], *refs[1:]] if m == modality else refs

    return references


@mutant(
    "maum.ir_to_rgb_not_static",
    "stop-gradient of IR image → RGB proxy: L_Uni trains the visible proxies",
    tests=[STATIC],
    fast=True,
)
def _(mp):
    mp.setattr(maum_mod.MAUM, "references", _live_current(maum_mod.VIS))


@mutant(
    "maum.rgb_to_ir_not_static",
    "stop-gradient of RGB image → IR proxy: L_Uni trains the infrared proxies",
    tests=[STATIC],
    fast=True,
)
def _(mp):
    mp.setattr(maum_mod.MAUM, "references", _live_current(maum_mod.IR))


@mutant(
    "maum.memory_ignored",
    "memory bank reaching the loss: L_Uni sees the current proxies only",
    tests=[T + "test_stored_copies_reach_the_loss_in_training_step"],
    fast=True,
)
def _(mp):
    real = maum_mod.MAUM.references
    mp.setattr(maum_mod.MAUM, "references", lambda self, m: real(self, m)[:1])


@mutant(
    "maum.memory_never_stored",
    "memory store (per epoch, the default): no snapshot of the proxies is ever taken",
    tests=[T + "test_epoch_store_keeps_the_proxies_of_the_last_epochs"],
    fast=True,
)
def _(mp):
    mp.setattr(maum_mod.MAUM, "set_epoch", Method.set_epoch)


@mutant(
    "maum.memory_averaged",
    "memory form memory_reduce: hard (hardest copy): the CE averaged over the sets instead",
    tests=[T + "test_stored_copies_reach_the_loss_in_training_step[hard]"],
    fast=True,
)
def _(mp):
    real = maum_mod.unidirectional_ce
    mp.setattr(
        maum_mod,
        "unidirectional_ce",
        lambda feats, labels, refs, temp, reduce="mean": real(feats, labels, refs, temp, "mean"),
    )


@mutant(
    "maum.single_phase",
    "two-phase start: the unidirectional metrics act from the first epoch",
    tests=[T + "test_two_phases_by_default"],
    fast=True,
)
def _(mp):
    mp.setattr(maum_mod.MAUM, "uni_active", lambda self: self.cfg.uni_weight > 0)


@mutant(
    "maum.keep_fraction_unwired",
    "modality imbalance: data.keep_fraction is not applied to a run's training set",
    tests=[T + "test_a_run_trains_on_the_kept_fraction"],
    fast=True,
)
def _(mp):
    mp.setattr(run_mod, "keep_fraction", lambda samples, *a, **k: list(samples))


@mutant(
    "maum.update_store_never_writes",
    "memory store `update`: the optimiser step's trained identities get no copy",
    tests=[T + "test_memory_holds_a_copy_per_identity_update"],
    fast=True,
)
def _(mp):
    def after_optimizer_step(self):
        self._pending = None

    mp.setattr(maum_mod.MAUM, "after_optimizer_step", after_optimizer_step)


@mutant(
    "maum.skipped_step_stores",
    "AMP skip: a step the GradScaler skipped still stores copies of the unchanged proxies",
    tests=[T + "test_a_skipped_optimizer_step_stores_no_copy"],
    fast=True,
)
def _(mp):
    real = maum_mod.MAUM.after_optimizer_step

    def after_optimizer_step(self):
        self.optimizer_stepped = True
        real(self)

    mp.setattr(maum_mod.MAUM, "after_optimizer_step", after_optimizer_step)


@mutant(
    "maum.shared_proxy_visible_only",
    "relay baseline `proxies: shared`: infrared images do not train the shared proxy",
    tests=[T + "test_shared_proxy_baseline_trains_one_cosine_proxy_for_both_modalities"],
    fast=True,
)
def _(mp):
    real = maum_mod.MAUM.own_proxies

    def own_proxies(self, modality):
        w = real(self, modality)
        shared = self.cfg.proxies == "shared" and modality == maum_mod.IR
        return w.detach() if shared else w

    mp.setattr(maum_mod.MAUM, "own_proxies", own_proxies)


@mutant(
    "maum.diagnostics_blind",
    "memory diagnostics: mem_angle / mem_grad_cos read the current proxies as the memory",
    tests=[T + "test_memory_diagnostics_say_how_much_the_memory_adds"],
    fast=True,
)
def _(mp):
    real = maum_mod.MAUM._memory_diagnostics

    def blind(self, f, y, masks, refs):
        return real(self, f, y, masks, {k: [r[0]] * len(r) for k, r in refs.items()})

    mp.setattr(maum_mod.MAUM, "_memory_diagnostics", blind)


@mutant(
    "maum.diagnostics_count_fallbacks",
    "mem_angle: identities without a stored copy counted at 0° (their fallback set)",
    tests=[T + "test_memory_diagnostics_say_how_much_the_memory_adds"],
    fast=True,
)
def _(mp):
    real = maum_mod.MAUM._memory_diagnostics

    def counting(self, f, y, masks, refs):
        writes = self.bank_writes
        self.bank_writes = torch.full_like(writes, len(self.bank))  # every set "held"
        try:
            return real(self, f, y, masks, refs)
        finally:
            self.bank_writes = writes

    mp.setattr(maum_mod.MAUM, "_memory_diagnostics", counting)


@mutant(
    "maum.joint_averaged",
    "memory form memory_reduce: joint (one softmax over all copies): averaged over the sets",
    tests=[T + "test_stored_copies_reach_the_loss_in_training_step[joint]"],
    fast=True,
)
def _(mp):
    real = maum_mod.unidirectional_ce

    def averaged(feats, labels, refs, temp, reduce="mean"):
        return real(feats, labels, refs, temp, "mean" if reduce == "joint" else reduce)

    mp.setattr(maum_mod, "unidirectional_ce", averaged)


@mutant(
    "maum.memory_every_ignored",
    "epoch store spacing memory_every: a snapshot at every epoch start regardless",
    tests=[T + "test_epoch_store_every_k_epochs_spaces_the_sets"],
    fast=True,
)
def _(mp):
    real = maum_mod.MAUM.set_epoch

    def set_epoch(self, epoch):
        every = self.cfg.memory_every
        object.__setattr__(self.cfg, "memory_every", 1)
        try:
            real(self, epoch)
        finally:
            object.__setattr__(self.cfg, "memory_every", every)

    mp.setattr(maum_mod.MAUM, "set_epoch", set_epoch)


@mutant(
    "maum.keep_fraction_float_halves",
    "keep_fraction's half-up rounding of the decimal fraction: binary floating point instead",
    tests=[T + "test_keep_fraction_rounds_exact_halves_up_for_any_decimal"],
    fast=True,
)
def _(mp):
    mp.setattr(imbalance_mod, "Fraction", lambda x, d=None: float(x) if d is None else x / d)


@mutant(
    "maum.frozen_proxies_move",
    "freeze_proxies: the optimiser's steps still move the proxies in phase 2",
    tests=[T + "test_frozen_proxies_stay_as_phase_one_left_them"],
    fast=True,
)
def _(mp):
    real = maum_mod.MAUM.after_optimizer_step

    def after_optimizer_step(self):
        if self.cfg.freeze_proxies:
            stored = self.phase1_stored.clone()
            self.phase1_stored.fill_(False)
            real(self)
            self.phase1_stored.copy_(stored)
        else:
            real(self)

    mp.setattr(maum_mod.MAUM, "after_optimizer_step", after_optimizer_step)
