"""Mutants of MAUM (methods/maum.py, losses/proxy.py, the keep_fraction wiring in
engine/run.py): one per mechanism the abstract names, each removed at run time."""

from __future__ import annotations

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
