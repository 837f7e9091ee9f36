"""Mutants of the training data: the samplers (data/samplers.py) and the loaders' per-epoch
randomness (data/loader.py)."""

from __future__ import annotations

from vireid.data import loader, samplers

from . import mutant

S = "tests/test_samplers.py::"


@mutant(
    "data.cross_sampler_ids_unaligned",
    "Modality-balanced sampler (AGW IdentitySampler): the infrared block's identities drawn "
    "apart from the visible block's, so a batch's identities no longer span both modalities",
    tests=[S + "test_cross_modality_batches_hold_p_ids_times_k_per_modality"],
    fast=True,
)
def _(mp):
    def unaligned(self, rng):
        vis_ids = rng.choice(self.ids, self.P, replace=False)
        ir_ids = rng.choice(self.ids, self.P, replace=False)
        vis = [samplers._pick(rng, self.vis[y], self.K) for y in vis_ids]
        ir = [samplers._pick(rng, self.ir[y], self.K) for y in ir_ids]
        return [vis, ir]

    mp.setattr(samplers.CrossModalitySampler, "_blocks", unaligned)


@mutant(
    "data.cross_sampler_one_modality",
    "Modality-balanced sampler: the second block drawn from the visible images too (no "
    "infrared half)",
    tests=[S + "test_cross_modality_batches_hold_p_ids_times_k_per_modality"],
    fast=True,
)
def _(mp):
    init = samplers.CrossModalitySampler.__init__

    def visible_only(self, *a, **k):
        init(self, *a, **k)
        self.ir = self.vis

    mp.setattr(samplers.CrossModalitySampler, "__init__", visible_only)


@mutant(
    "data.pseudo_sampler_camera_blind",
    "Pseudo-label sampler (Cluster-Contrast RandomMultipleGallerySampler): a cluster's "
    "instances drawn without preferring cameras other than the first instance's",
    tests=[S + "test_pseudo_label_sampler_prefers_other_cameras_and_skips_outliers"],
    fast=True,
)
def _(mp):
    def any_camera(self, rng, pool):
        return samplers._pick(rng, pool, self.K)

    mp.setattr(samplers.PseudoLabelSampler, "_instances", any_camera)


@mutant(
    "data.sampler_epoch_ignored",
    "Samplers: set_epoch ignored, every epoch draws epoch 0's batches",
    tests=[S + "test_epochs_differ_and_repeat"],
    fast=True,
)
def _(mp):
    mp.setattr(samplers._EpochBatches, "set_epoch", lambda self, epoch: None)


@mutant(
    "data.loader_augmentation_seed_fixed",
    "EpochLoader: the workers' augmentation seed not reseeded per (seed, rank, epoch), so "
    "a resumed run's augmentations differ from a straight run's",
    tests=[S + "test_epoch_loader_randomness_depends_on_seed_and_epoch_only"],
    fast=True,
)
def _(mp):
    def sampler_only(self, epoch):
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    mp.setattr(loader.EpochLoader, "set_epoch", sampler_only)


@mutant(
    "data.pseudo_sampler_community_draw_ignored",
    "Pseudo-label sampler, data.batch.instances=community (Cluster-Contrast's "
    "RandomMultipleGallerySampler draw: K-1 from the anchor's other cameras, with "
    "replacement): the option is ignored and the distinct draw runs",
    tests=[S + "test_community_instances_repeat_the_other_cameras_never_the_anchors"],
    fast=True,
)
def _(mp):
    init = samplers.PseudoLabelSampler.__init__

    def distinct_always(self, *a, **k):
        init(self, *a, **k)
        self.draw = "distinct"

    mp.setattr(samplers.PseudoLabelSampler, "__init__", distinct_always)
