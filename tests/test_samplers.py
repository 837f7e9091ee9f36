from collections import Counter

import numpy as np
import pytest
import torch

from vireid.data.records import Modality
from vireid.data.samplers import CrossModalitySampler, PseudoLabelSampler

V, I = Modality.VISIBLE, Modality.INFRARED


def data(n_ids=10, per=5):
    labels, mods = [], []
    for y in range(n_ids):
        labels += [y] * per + [y] * (per - 2)
        mods += [V] * per + [I] * (per - 2)
    return labels, mods


def test_cross_modality_batches_hold_p_ids_times_k_per_modality():
    labels, mods = data()
    s = CrossModalitySampler(labels, mods, num_ids=4, num_instances=4, num_batches=20, seed=1)
    for b in s:
        assert len(b) == 32
        vis, ir = b[:16], b[16:]
        assert all(mods[i] is V for i in vis) and all(mods[i] is I for i in ir)
        assert [labels[i] for i in vis] == [labels[i] for i in ir]
        assert set(Counter(labels[i] for i in vis).values()) == {4}


def test_epochs_differ_and_repeat():
    labels, mods = data()
    s = CrossModalitySampler(labels, mods, 2, 2, num_batches=5, seed=0)
    a = list(s)
    s.set_epoch(1)
    b = list(s)
    s.set_epoch(0)
    assert a != b and a == list(s)


def test_distributed_ranks_share_the_global_batch_by_identity():
    """Under DDP every rank takes every batch and a contiguous share of its identities
    (both modalities), so the ranks' shares concatenate per modality block into exactly
    the single-process batch, and every rank runs as many steps as one process."""
    labels, mods = data()
    full = list(CrossModalitySampler(labels, mods, 3, 2, num_batches=7, seed=3))
    shards = [
        list(CrossModalitySampler(labels, mods, 3, 2, num_batches=7, seed=3, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) == len(full) == 7
    for b, (a, c) in zip(full, zip(*shards)):
        half = len(b) // 2  # visible block, then infrared
        assert b == a[: len(a) // 2] + c[: len(c) // 2] + a[len(a) // 2 :] + c[len(c) // 2 :]
        assert len(a) == 2 * 2 and len(c) == 2 * 2 * 2  # 1 and 2 of the 3 identities
        assert {labels[i] for i in a}.isdisjoint(labels[i] for i in c)
        assert {labels[i] for i in a[:2]} == {labels[i] for i in a[2:]}  # same ids per modality
        assert b[:half] == a[:2] + c[:4]


def test_pseudo_label_shares_and_too_few_identities():
    labels = [0] * 4 + [1] * 4 + [2] * 4
    cams = [1, 2] * 6
    full = list(PseudoLabelSampler(labels, cams, 2, 2, num_batches=3, seed=1))
    shards = [
        list(PseudoLabelSampler(labels, cams, 2, 2, num_batches=3, seed=1, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert [a + c for a, c in zip(*shards)] == full
    with pytest.raises(ValueError, match="2 identities cannot be shared by 3 processes"):
        PseudoLabelSampler(labels, cams, 2, 2, rank=0, world_size=3)


def test_sampler_needs_enough_ids():
    labels, mods = data(n_ids=2)
    with pytest.raises(ValueError, match="2 identities have both modalities"):
        CrossModalitySampler(labels, mods, 3, 2)


def test_pseudo_label_sampler_prefers_other_cameras_and_skips_outliers():
    labels = [0] * 6 + [1] * 6 + [-1] * 5
    cams = [1, 1, 1, 2, 3, 4] * 2 + [1] * 5
    s = PseudoLabelSampler(labels, cams, num_ids=2, num_instances=4, num_batches=30, seed=0)
    for b in s:
        assert all(labels[i] >= 0 for i in b)
        for k in range(0, len(b), 4):
            group = b[k : k + 4]
            assert len({labels[i] for i in group}) == 1
            assert len(set(group)) == 4
            # ≥ 3 images of each cluster lie outside any one camera: the instances
            # after the first all come from cameras other than the first's
            assert all(cams[i] != cams[group[0]] for i in group[1:])
    with pytest.raises(ValueError, match="outlier"):
        PseudoLabelSampler([-1, -1], [1, 2], 2, 2)


def test_small_clusters_sample_with_replacement():
    s = PseudoLabelSampler([0, 0, 1], [1, 2, 1], num_ids=2, num_instances=4, num_batches=3)
    for b in s:
        assert len(b) == 8 and np.isin(b, [0, 1, 2]).all()


class _RandomImages(torch.utils.data.Dataset):
    """Every item draws from the worker's torch RNG, like a random augmentation."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        return (torch.rand(1, 2, 2),), i % 6, 1, 0, i


def test_epoch_loader_randomness_depends_on_seed_and_epoch_only():
    """Epoch 2 of a loader that already ran epochs 0 and 1 equals epoch 2 of a loader built
    fresh (as after a resume), with worker processes; other epochs and ranks differ."""
    from vireid.data.loader import make_loader

    def loader(rank=0):
        sampler = PseudoLabelSampler([i % 6 for i in range(24)], [1] * 24, 3, 2, 2, seed=5)
        return make_loader(_RandomImages(), batch_sampler=sampler, workers=2, seed=5, rank=rank)

    def epoch(ld, e):
        ld.set_epoch(e)
        return torch.cat([b["images"] for b in ld])

    long_run = loader()
    e0, _, e2 = (epoch(long_run, e) for e in range(3))
    assert torch.equal(e2, epoch(loader(), 2))
    assert not torch.equal(e0, e2)
    assert not torch.equal(epoch(loader(rank=1), 2), e2)


def test_ddp_epoch_with_fewer_clusters_than_ranks_is_skipped(sysu_root):
    """A batch of one pseudo-identity cannot be shared by two processes: the epoch is
    skipped with a warning (as an epoch without clusters), training goes on."""
    from types import SimpleNamespace

    import numpy as np

    from vireid.config.schema import BatchCfg, ClusterCfg
    from vireid.data.datasets.sysu_mm01 import load_sysu_mm01
    from vireid.data.records import Modality
    from vireid.data.usl import LoaderOpts, ModalityStream
    from vireid.engine.distributed import DistInfo
    from vireid.engine.pseudo_labels import PseudoLabelHook

    train = load_sysu_mm01(sysu_root).train
    streams = {
        k: ModalityStream(m, [s for s in train if s.modality is m], transforms=None)
        for k, m in enumerate(Modality)
    }
    method = SimpleNamespace(sampling="paired")
    hook = PseudoLabelHook(
        method, streams, None, ClusterCfg(), BatchCfg(num_ids=2), LoaderOpts(3, 0, 0, 0, 2),
        DistInfo(0, 2),
    )  # fmt: skip
    trainer = SimpleNamespace(epoch=0, skip_epoch=False, loader=None)
    one_cluster = {k: np.zeros(len(s.samples), np.int64) for k, s in streams.items()}
    hook._build_loader(trainer, one_cluster)
    assert trainer.skip_epoch and trainer.loader is None
    two = {k: np.arange(len(s.samples)) % 2 for k, s in streams.items()}
    trainer.skip_epoch = False
    hook._build_loader(trainer, two)
    assert not trainer.skip_epoch and len(trainer.loader) == 3
