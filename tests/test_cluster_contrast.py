"""Cluster-Contrast / ADCA / PGM at the method level, on features set by hand (people with
a visible and an infrared cluster each, the infrared clusters numbered in another order):
the memory update after a step, the hard rule, one memory per modality, ADCA's memory
aggregation and PGM's matching and alternating cross term."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feature_table import FeatureTable
from vireid.methods.cluster_contrast import ClusterContrast

VIS, IR = 0, 1
IDS, PER, DIM = 5, 4, 16


def people(seed: int = 0):
    """Clustering features of IDS people × PER images per modality, with their cluster
    labels: visible cluster k is person k, infrared cluster ``perm[k]`` is person k. The
    infrared features share an offset (the modality gap)."""
    rng = np.random.default_rng(seed)
    proto = rng.normal(size=(IDS, DIM))
    gap = 0.8 * rng.normal(size=DIM)
    perm = rng.permutation(IDS)
    pid = np.repeat(np.arange(IDS), PER)
    fv = proto[pid] + 0.2 * rng.normal(size=(len(pid), DIM))
    fr = proto[pid] + gap + 0.2 * rng.normal(size=(len(pid), DIM))
    norm = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return {VIS: norm(fv), IR: norm(fr)}, {VIS: pid, IR: perm[pid]}, perm


def method(feats, labels, epoch: int = 0, **kw) -> ClusterContrast:
    """A method whose network's features are the clustering features (visible rows first,
    then infrared), after the epoch's ``on_clusters``."""
    m = ClusterContrast(FeatureTable(np.concatenate([feats[VIS], feats[IR]])), **kw)
    m.on_clusters(epoch, feats, labels)
    m.set_epoch(epoch)
    return m


def batch(rows, labels):
    """A training batch of table rows (visible rows are 0 … IDS·PER − 1)."""
    rows = torch.as_tensor(rows)
    n = IDS * PER
    modality = (rows >= n).long()
    y = torch.tensor([labels[int(m)][int(r) - n * int(m)] for r, m in zip(rows, modality)])
    return {"images": rows, "labels": y, "modality": modality}


def test_a_step_moves_the_batch_clusters_memory_rows_towards_their_samples():
    feats, labels, _ = people()
    m = method(feats, labels)
    before = {k: mem.features.clone() for k, mem in m.memories.items()}
    b = batch([0, 4 * PER, 20 + 2 * PER], labels)  # visible persons 0 and 4, infrared 2
    m.training_step(b)
    m.after_optimizer_step()
    for mod in (VIS, IR):
        sel = b["modality"] == mod
        rows, ys = b["images"][sel], b["labels"][sel]
        x = F.normalize(m.model.table[rows].detach(), dim=1)
        after = m.memories[mod].features
        for r, y in zip(x, ys):
            assert after[y] @ r > before[mod][y] @ r + 1e-3  # pulled towards its sample
        untouched = torch.ones(len(after), dtype=torch.bool)
        untouched[ys] = False
        torch.testing.assert_close(after[untouched], before[mod][untouched], rtol=0, atol=0)


def test_hard_memory_moves_by_the_least_similar_sample_only():
    """``memory: hard``: a cluster's row moves by its least similar sample of the batch
    alone, so adding a more similar sample of the same cluster changes nothing (the mean
    rule moves by every sample)."""
    feats, labels, _ = people()
    centre = feats[VIS][:PER].mean(0)
    sims = feats[VIS][:PER] @ centre
    near, far = int(np.argmax(sims)), int(np.argmin(sims))

    def row_after(rows, mode):
        m = method(feats, labels, memory=mode)
        m.training_step(batch(rows, labels))
        m.after_optimizer_step()
        return m.memories[VIS].features[0]

    torch.testing.assert_close(row_after([near, far], "hard"), row_after([far], "hard"))
    assert not torch.allclose(row_after([near, far], "mean"), row_after([far], "mean"))


def test_each_modality_trains_against_its_own_memory():
    """One memory per modality: the visible term does not see the infrared memory and the
    infrared term does not see the visible one."""
    feats, labels, _ = people()
    m = method(feats, labels)
    b = batch([0, 5, 10, 20, 25, 30], labels)
    first = m.training_step(b)
    m.memories[IR].features = F.normalize(torch.randn_like(m.memories[IR].features), dim=1)
    second = m.training_step(b)
    assert float(second["nce_visible"]) == pytest.approx(float(first["nce_visible"]), abs=1e-6)
    assert float(second["nce_infrared"]) != pytest.approx(float(first["nce_infrared"]), abs=1e-3)
    m.memories[VIS].features = F.normalize(torch.randn_like(m.memories[VIS].features), dim=1)
    third = m.training_step(b)
    assert float(third["nce_infrared"]) == pytest.approx(float(second["nce_infrared"]), abs=1e-6)


def test_adca_pulls_visible_memory_rows_to_their_associated_infrared_cluster():
    """ADCA: each visible cluster associated with an infrared one (here every person) has
    its memory row blended towards that infrared row; the infrared memory is unchanged."""
    feats, labels, perm = people()
    plain = method(feats, labels, cross="none")
    adca = method(feats, labels, cross="adca", adca_threshold=0.3)
    mi = plain.memories[IR].features
    torch.testing.assert_close(adca.memories[IR].features, mi)
    for k in range(IDS):
        before = plain.memories[VIS].features[k] @ mi[perm[k]]
        after = adca.memories[VIS].features[k] @ mi[perm[k]]
        assert after > before + 0.05, k


def test_pgm_matches_each_visible_cluster_to_its_persons_infrared_cluster():
    feats, labels, perm = people()
    m = method(feats, labels, cross="pgm")
    assert m.v2i.tolist() == perm.tolist()
    assert m.i2v.tolist() == np.argsort(perm).tolist()


@pytest.mark.parametrize("epoch", [0, 1])
def test_pgm_cross_term_alternates_its_direction_by_epoch(epoch):
    """PGM's cross term: infrared features against the visible memory on odd epochs,
    visible features against the infrared memory on even epochs."""
    feats, labels, _ = people()
    m = method(feats, labels, epoch=epoch, cross="pgm")
    b = batch([0, 5, 10, 20, 25, 30], labels)
    before = float(m.training_step(b)["cross"])
    other = VIS if epoch % 2 == 0 else IR  # the memory the term must not read
    used = IR if epoch % 2 == 0 else VIS
    m.memories[other].features = F.normalize(torch.randn_like(m.memories[other].features), dim=1)
    assert float(m.training_step(b)["cross"]) == pytest.approx(before, abs=1e-6)
    m.memories[used].features = F.normalize(torch.randn_like(m.memories[used].features), dim=1)
    assert float(m.training_step(b)["cross"]) != pytest.approx(before, abs=1e-3)
