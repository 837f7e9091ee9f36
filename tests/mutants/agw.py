"""Mutants of the supervised baselines AGW and CAJ (losses/triplet.py, methods/supervised.py,
CAJ's channel augmentation in data/transforms.py and data/loader.py) and of the test-time
feature (evaluation/features.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from vireid.data import loader, transforms
from vireid.evaluation import features
from vireid.losses import triplet
from vireid.methods.supervised import AGW, CAJ
from vireid.models import pooling, two_stream

from . import mutant, replace

TRIPLET_TESTS = [
    "tests/test_agw_caj.py::test_triplet_pulls_the_other_modality_positive[agw]",
    "tests/test_agw_caj.py::test_triplet_pulls_the_other_modality_positive[caj]",
]


@mutant(
    "agw.wrt_uniform_weights",
    "AGW weighted regularisation: softmax weights over positives / negatives replaced by "
    "a plain mean",
    tests=["tests/test_losses.py::test_wrt_brute_force"],
    fast=True,
)
def _(mp):
    def uniform(dist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask / (mask.sum(dim=1, keepdim=True) + 1e-6)

    mp.setattr(triplet, "_softmax_weights", uniform)


@mutant(
    "agw.triplet_same_modality_positives",
    "AGW/CAJ triplet: positives (and the same identity in the other modality) made "
    "modality-specific, so the triplet no longer aligns the two modalities",
    tests=TRIPLET_TESTS,
    fast=True,
)
def _(mp):
    step, losses = AGW.training_step, {AGW: AGW.triplet_loss, CAJ: CAJ.triplet_loss}

    def remember_modality(self, batch):
        self._mutant_modality = batch["modality"]
        return step(self, batch)

    def per_modality(cls):
        def loss(self, pool, labels):
            return losses[cls](self, pool, labels * 2 + self._mutant_modality)

        return loss

    mp.setattr(AGW, "training_step", remember_modality)
    for cls in losses:
        mp.setattr(cls, "triplet_loss", per_modality(cls))


@mutant(
    "agw.triplet_weight_ignored",
    "AGW: method.triplet_weight has no effect (the triplet always enters the loss)",
    tests=["tests/test_ablation_switches.py::test_switch_is_live[agw:CE only (no triplet)]"],
    fast=True,
)
def _(mp):
    init = AGW.__init__

    def always_on(self, model, label_smoothing=0.0, triplet="wrt", margin=0.3, triplet_weight=1):
        init(self, model, label_smoothing, triplet, margin, 1.0)

    mp.setattr(AGW, "__init__", always_on)


@mutant(
    "caj.triplet_is_wrt",
    "CAJ: the ADP triplet (temperature alpha, squared gap gamma, sign of the violation) "
    "replaced by AGW's WRT triplet",
    tests=["tests/test_agw_caj.py::test_caj_triplet_is_the_adp_triplet"],
    fast=True,
)
def _(mp):
    def wrt(self, pool, labels):
        return triplet.weighted_regularized_triplet(pool, labels)

    mp.setattr(CAJ, "triplet_loss", wrt)


@mutant(
    "caj.adp_unsigned",
    "CAJ ADP triplet: the sign of the violation dropped (the soft margin acts on the squared "
    "gap with target +1 whether the positive is closer or not)",
    tests=["tests/test_losses.py::test_adp_brute_force"],
    fast=True,
)
def _(mp):
    real = triplet.adp_triplet

    def unsigned(feats, labels, alpha=1.0, gamma=1.0, square=True):
        if not square:
            return real(feats, labels, alpha, gamma, square)
        far_pos, close_neg = triplet._weighted_distances(feats, labels, alpha)
        diff_pow = (gamma * (far_pos - close_neg).pow(2)).clamp(max=88)
        return F.soft_margin_loss(diff_pow, torch.ones_like(diff_pow))

    replace(mp, triplet, "adp_triplet", unsigned)


@mutant(
    "caj.no_second_visible_view",
    "CAJ channel augmentation: the channel-exchanged second visible view never reaches the batch",
    tests=["tests/test_agw_caj.py::test_caj_batch_holds_a_channel_exchanged_view"],
    fast=True,
)
def _(mp):
    pick = loader.ImageDataset._pick

    def first_view_only(self, s):
        return pick(self, s)[:1]

    mp.setattr(loader.ImageDataset, "_pick", first_view_only)


@mutant(
    "caj.channel_exchange_identity",
    "CAJ ChannelExchange: the image passes unchanged (no channel replicated)",
    tests=[
        "tests/test_transforms_cache.py::test_channel_exchange_replicates_one_channel",
        "tests/test_agw_caj.py::test_caj_batch_holds_a_channel_exchanged_view",
    ],
    fast=True,
)
def _(mp):
    mp.setattr(transforms.ChannelExchange, "forward", lambda self, img: img.clone())


@mutant(
    "caj.adaptive_gray_identity",
    "CAJ ChannelAdapGray on infrared: the image passes unchanged",
    tests=["tests/test_transforms_cache.py::test_adaptive_gray_outputs"],
    fast=True,
)
def _(mp):
    mp.setattr(transforms.ChannelAdaptiveGray, "forward", lambda self, img: img.clone())


@mutant(
    "caj.channel_erasing_off",
    "CAJ ChannelRandomErasing: never erases (data.augment.channel_erasing ignored)",
    tests=["tests/test_agw_caj.py::test_channel_erasing_fills_with_the_caj_values"],
    fast=True,
)
def _(mp):
    replace(mp, transforms, "channel_random_erasing", lambda p: v2.Identity())


@mutant(
    "agw.test_feature_pre_bn",
    "BNNeck at test: evaluation features taken before the BN layer (pool) instead of the "
    "BN feature",
    tests=["tests/test_agw_caj.py::test_evaluation_features_are_the_bn_feature"],
    fast=True,
)
def _(mp):
    mp.setitem(features.extract_features.__wrapped__.__kwdefaults__, "which", "pool")


@mutant(
    "agw.one_stem",
    "Two-stream network: infrared images go through the visible stem (no modality-specific stem)",
    tests=["tests/test_models.py::test_mixed_batch_routes_each_sample_to_its_stem"],
    fast=True,
)
def _(mp):
    def visible_stem(self, images, modality):
        return self.stems[0](images)

    mp.setattr(two_stream.TwoStreamNet, "stem_forward", visible_stem)


@mutant(
    "agw.non_local_skipped",
    "AGW non-local attention: the blocks are built but never applied in the backbone",
    tests=["tests/test_agw_caj.py::test_non_local_blocks_are_on_the_forward_path"],
    fast=True,
)
def _(mp):
    def plain(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    mp.setattr(two_stream.TwoStreamNet, "backbone", plain)


@mutant(
    "agw.gem_is_average",
    "AGW GeM pooling: p ignored, plain average pooling",
    tests=["tests/test_models.py::test_gem_values"],
    fast=True,
)
def _(mp):
    mp.setattr(pooling.GeM, "forward", lambda self, x: x.flatten(2).mean(-1))


@mutant(
    "agw.non_local_at_full_rate",
    "AGW/CAJ optimiser: the non-local blocks train at the full rate with the BNNeck and "
    "the classifier instead of the backbone's lr x 0.1 (AGW train.py's groups)",
    tests=[
        "tests/test_agw_caj.py::test_only_the_bnneck_and_classifier_train_at_the_full_rate[agw]",
        "tests/test_agw_caj.py::test_only_the_bnneck_and_classifier_train_at_the_full_rate[caj]",
    ],
    fast=True,
)
def _(mp):
    mp.setattr(AGW, "backbone_prefixes", ("stems.", "layers."))


@mutant(
    "caj.erasing_draw_torchvision",
    "CAJ channel random erasing, data.augment.erasing_draw=caj: CAJ's own box draw (uniform "
    "aspect in [0.3, 3.33], 100 tries) replaced by torchvision's log-uniform one",
    tests=["tests/test_agw_caj.py::test_both_erasing_draws_fill_one_box_with_the_caj_values"],
    fast=True,
)
def _(mp):
    def torchvision_draw(p: float = 0.5, *a, **k):
        ratio = (0.3, 1 / 0.3)
        return v2.RandomErasing(
            p=p, scale=(0.02, 0.4), ratio=ratio, value=transforms.CAJ_ERASE_VALUE
        )

    mp.setattr(transforms, "CajErasing", torchvision_draw)
