"""AGW and CAJ at the method level: the triplet's positives cross the modalities, CAJ's
triplet is the ADP one, CAJ's batches carry the channel-exchanged view, CAJ's channel
erasing, and the BNNeck (BN) feature at test time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_overrides
from feature_table import FeatureTable
from vireid.config import load_config
from vireid.data.cache import load_rgb
from vireid.data.datasets import build_dataset
from vireid.data.loader import MODALITY_INDEX
from vireid.data.protocols import query_gallery
from vireid.data.transforms import (
    CAJ_ERASE_VALUE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_test_transform,
    build_train_transforms,
)
from vireid.engine.builders import build_train_data
from vireid.engine.distributed import DistInfo
from vireid.evaluation.features import extract_features
from vireid.methods.supervised import AGW, CAJ
from vireid.models.two_stream import TwoStreamNet

QUICKSTART = Path(__file__).parents[1] / "configs" / "quickstart"


def _two_modality_batch(gap: float, seed: int = 0):
    """2 identities × (2 visible + 2 infrared); identities 5 apart, the infrared block
    shifted by ``gap`` along an axis of its own (the modality gap)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    modality = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    feats = torch.zeros(8, 4)
    feats[:, 0] = 5.0 * ids
    feats[:, 1] = gap * modality
    feats += 0.1 * torch.randn(8, 4, generator=g)
    batch = {"images": torch.arange(8), "labels": ids, "modality": modality}
    return feats, batch


def _triplet(cls, gap: float, **kw) -> float:
    feats, batch = _two_modality_batch(gap)
    method = cls(FeatureTable(feats, 2), **kw)
    return float(method.training_step(batch)["triplet"])


@pytest.mark.parametrize("cls", [AGW, CAJ], ids=["agw", "caj"])
def test_triplet_pulls_the_other_modality_positive(cls):
    """The positives of an anchor include its identity's images of the other modality:
    the farther apart the modalities, the larger the triplet. (With positives kept within
    a modality, the same identity across the gap would be a *negative* and the triplet
    would shrink as the modalities part.)"""
    assert _triplet(cls, gap=3.0) > _triplet(cls, gap=0.0) + 1e-3


def test_caj_triplet_is_the_adp_triplet():
    """CAJ's triplet is the ADP one: its temperature, gap scale and squared form reach the
    loss (AGW's WRT has none of them)."""
    base = _triplet(CAJ, gap=3.0)
    assert _triplet(CAJ, gap=3.0, gamma=2.0) != pytest.approx(base, rel=1e-4)
    assert _triplet(CAJ, gap=3.0, alpha=2.0) != pytest.approx(base, rel=1e-4)
    assert _triplet(CAJ, gap=3.0, square=False) != pytest.approx(base, rel=1e-4)


def test_caj_batch_holds_a_channel_exchanged_view(sysu_root, tmp_path):
    """CAJ's training batch (from its quickstart recipe): visible images, the same visible
    identities again as a channel-exchanged view (one channel copied to all three), then
    infrared, labels ``cat(label_v, label_v, label_r)``."""
    cfg = load_config(
        QUICKSTART / "caj_synth.yaml",
        [
            *run_overrides(sysu_root, tmp_path / "run", tmp_path / "c"),
            "data.batch.num_ids=2",
            "data.batch.num_instances=2",
            "data.cache=false",
        ],
    )
    data = build_train_data(cfg, DistInfo(), build_dataset(cfg.data.dataset))
    data.loader.set_epoch(0)
    batch = next(iter(data.loader))
    pk = 4
    assert batch["modality"].tolist() == [0] * 2 * pk + [1] * pk
    y = batch["labels"]
    assert torch.equal(y[:pk], y[pk : 2 * pk])
    first, second = batch["images"][:pk], batch["images"][pk : 2 * pk]
    # the exchanged view: all three channels equal in every image (up to the erased boxes,
    # erased before the exchange and so equal too); the first view keeps its colours
    assert torch.equal(second[:, 0], second[:, 1]) and torch.equal(second[:, 1], second[:, 2])
    assert not torch.equal(first[:, 0], first[:, 1])


def test_channel_erasing_fills_with_the_caj_values():
    """``data.augment.channel_erasing``: a box of 2–40 % of the image takes CAJ's fixed
    per-channel values (after normalisation, as CAJ applies it)."""
    tf = build_train_transforms(64, 32, pad=0, flip=0.0, channel_erasing=1.0)["visible"]
    img = np.random.default_rng(0).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    torch.manual_seed(0)
    out = tf(img)
    fill = torch.tensor(CAJ_ERASE_VALUE)[:, None, None]
    erased = (out == fill).all(0)
    assert erased.float().mean() >= 0.02
    # the rest is the normalised image
    mean, std = (torch.tensor(v)[:, None, None] for v in (IMAGENET_MEAN, IMAGENET_STD))
    plain = (torch.from_numpy(img).permute(2, 0, 1) / 255.0 - mean) / std
    torch.testing.assert_close(out[:, ~erased], plain[:, ~erased])


@pytest.mark.parametrize("draw", ["torchvision", "caj"])
def test_both_erasing_draws_fill_one_box_with_the_caj_values(draw):
    tf = build_train_transforms(64, 32, pad=0, flip=0.0, channel_erasing=1.0, erasing_draw=draw)[
        "visible"
    ]
    img = np.random.default_rng(0).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    fill = torch.tensor(CAJ_ERASE_VALUE)[:, None, None]
    torch.manual_seed(0)
    shapes = []
    for _ in range(200):
        erased = (tf(img) == fill).all(0)
        rows, cols = erased.any(1).nonzero(), erased.any(0).nonzero()
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert (
            erased.sum() == h * w and 0.02 * 64 * 32 - 2 * (h + w) <= h * w <= 0.45 * 64 * 32
        )  # 40 %, rounded
        shapes.append(h / w)
    # CAJ draws the aspect uniformly in [0.3, 3.33] (mean 1.8), torchvision log-uniformly
    # (geometric mean 1): CAJ's boxes are taller on average
    # (measured with seed 0: median 1.90 against 1.26; the image's width cuts both)
    median = float(np.median(shapes))
    assert (median > 1.6) if draw == "caj" else (median < 1.5)
    with pytest.raises(ValueError, match="expected torchvision or caj"):
        build_train_transforms(64, 32, channel_erasing=1.0, erasing_draw="paper")


def test_evaluation_features_are_the_bn_feature(sysu_root):
    """Evaluation embeds with the BNNeck's BN feature (AGW's test-time feature), not the
    pooled feature before it; the BN layer's statistics are set far from identity so the
    two differ."""
    torch.manual_seed(0)
    model = TwoStreamNet("resnet18", 0, width=0.125, non_local=False)
    bn = model.bottleneck
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.1, 4.0)
        bn.weight.uniform_(0.5, 2.0)
    samples = query_gallery("sysu/all/single", sysu_root, 0)[0][:6]
    got = extract_features(model, samples, 64, 32, batch_size=4)
    tf = build_test_transform(64, 32)
    x = torch.stack([tf(load_rgb(s.path)) for s in samples])
    m = torch.tensor([MODALITY_INDEX[s.modality] for s in samples])
    with torch.no_grad():
        out = model.eval()(x, m)
    torch.testing.assert_close(torch.from_numpy(got), F.normalize(out["feat"], dim=1))
    assert not torch.allclose(F.normalize(out["feat"], dim=1), F.normalize(out["pool"], dim=1))


def test_non_local_blocks_are_on_the_forward_path():
    """AGW's non-local blocks start as the identity (zero output BN) and act once trained:
    with their output BN moved off zero, the feature changes."""
    torch.manual_seed(0)
    net = TwoStreamNet("resnet18", 0, width=0.125, non_local=True).eval()
    x, m = torch.randn(2, 3, 64, 32), torch.tensor([0, 1])
    with torch.no_grad():
        before = net(x, m)["pool"]
        for blocks in net.non_local:
            for block in blocks:
                block.W[1].weight.fill_(1.0)
        after = net(x, m)["pool"]
    assert not torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize("cls", [AGW, CAJ], ids=["agw", "caj"])
def test_only_the_bnneck_and_classifier_train_at_the_full_rate(cls):
    """AGW train.py / CAJ train_ext.py: one SGD group at 0.1 lr for every parameter but
    the BNNeck's and the classifier's, which train at lr; the non-local blocks are in the
    0.1 group (docs/benchmark.md, parity with the community code)."""
    model = TwoStreamNet("resnet18", 4, width=0.125, non_local=True)
    groups = cls(model).param_groups(lr=0.1, backbone_lr_mult=0.1)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        full = name.startswith(("bottleneck.", "classifier."))
        assert rate[id(p)] == pytest.approx(0.1 if full else 0.01), name
    assert any(n.startswith("non_local.") for n, _ in model.named_parameters())
