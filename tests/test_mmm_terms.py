"""MMM's memory terms and their options after review D1/D4/D5/D6, on the hand-made
features of test_mmm_method (a linear stand-in for the network): L_VR's mixed memory
(joint clusters or matched identities, its ½(mean_V + mean_R) rows, its gradient, its
reduction), the shared classifier's classes, the Inter form, the L1 prototype slots and
the merged-cluster diagnostic."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_mmm_method import IR, VIS, batch_of, method, people, split_people, stage_b
from vireid.methods import mmm_plan


def _cmc_step(m, batch):
    """(loss parts, gradient of the loss w.r.t. the batch's input rows)."""
    x = batch["images"].clone().requires_grad_(True)
    out = m.training_step({**batch, "images": x})
    out["loss"].backward()
    return out, x.grad


def test_matched_mixed_memory_lets_the_matching_train_an_infrared_sample(monkeypatch):
    """Review D1. In the paper's "+ MMLM" row (no Intra, Inter or Cross) an infrared
    sample's L_CMC gradient is the same under the right and a wrong matching when L_VR's
    mixed memory is indexed by the joint clusters (the default); with
    ``mixed_memory: matched`` its rows are the matched identities, ½(mean_V + mean_R), so
    a wrong matching gives a higher L_VR and a different infrared gradient."""
    feats, labels = people()
    person = np.r_[labels[VIS], 3 - labels[IR]]  # joint clusters: one per person
    monkeypatch.setattr(mmm_plan, "cluster_labels", lambda *a, **k: person.copy())
    wrong = np.array([2, 3, 0, 1])  # the right matching is [3, 2, 1, 0]
    batch = batch_of(feats)
    got = {}
    for mixed in ("joint", "matched"):
        for name in ("right", "wrong"):
            with monkeypatch.context() as mp:
                if name == "wrong":
                    mp.setattr(mmm_plan, "match_clusters", lambda *a, **k: wrong.copy())
                m = method(use_joint=True, lambda_intra=0.0, lambda_inter=0.0, mixed_memory=mixed)
                m.on_clusters(0, feats, labels)
            got[mixed, name] = (m, *_cmc_step(m, batch))
    ir = slice(4, 8)
    _, _, g_right = got["joint", "right"]
    _, _, g_wrong = got["joint", "wrong"]
    torch.testing.assert_close(g_right[ir], g_wrong[ir])  # the default: blind to the match
    m, right, g_right = got["matched", "right"]
    _, wrong_out, g_wrong = got["matched", "wrong"]
    assert wrong_out["nce_joint"] > right["nce_joint"] + 0.5  # ≈ ln 2: two half-right rows
    assert (g_right[ir] - g_wrong[ir]).abs().max() > 1e-3
    # a matched identity's row: ½(mean_V + mean_R) of person 0 (visible 0, infrared 3)
    row = m._arrays["joint"][0]
    want = 0.5 * (feats[VIS][labels[VIS] == 0].mean(0) + feats[IR][labels[IR] == 3].mean(0))
    torch.testing.assert_close(
        m.memories["vr"].features[row], F.normalize(torch.from_numpy(want), dim=0)
    )
    assert m._arrays["joint"][len(labels[VIS])] == row  # infrared sample 0: cluster 3, person 0


def test_shared_classifier_classes_are_the_matched_identities():
    """Y^v := QY^r in the official stage B's main loss: a visible sample's class of the
    shared classifier is its matched infrared cluster's class (people() numbers infrared
    clusters in reverse: per-modality classes would pair the wrong people)."""
    m, _ = stage_b()
    cls = m._arrays["cls"]
    assert cls[:16].tolist() == cls[16:].tolist()  # sample j of either modality: person j // 4
    assert sorted(cls.unique().tolist()) == [0, 1, 2, 3]


def test_mixed_memory_term_trains_the_network(monkeypatch):
    """L_CMC = L_V + L_R + L_VR: the loss is the sum of the three ClusterNCE terms, and
    L_VR moves the features (its gradient is not lost)."""
    feats, labels = people()
    person = np.r_[labels[VIS], 3 - labels[IR]]
    monkeypatch.setattr(mmm_plan, "cluster_labels", lambda *a, **k: person.copy())
    m = method(use_joint=True, lambda_intra=0.0, lambda_inter=0.0)
    m.on_clusters(0, feats, labels)
    batch = batch_of(feats)
    out, grad = _cmc_step(m, batch)
    parts = out["nce_visible"] + out["nce_infrared"] + out["nce_joint"]
    assert out["loss"].item() == pytest.approx(parts.item(), rel=1e-6)
    del m.memories["vr"]
    out, without = _cmc_step(m, batch)
    assert "nce_joint" not in out
    assert (grad - without).norm() > 0.1 * without.norm()  # (both small: separated people)


def test_mixed_memory_starts_from_the_mean_of_the_two_modality_means(monkeypatch):
    """CMC's mixed memory row of a joint cluster is ½(mean_V + mean_R), not the pooled
    centroid: a cluster of 3 visible + 1 infrared samples weighs the infrared one as much
    as the three visible ones together."""
    feats, labels = people(n=1, per=4)
    joint = np.array([0, 0, 0, 1, 0, 1, 1, 1])  # cluster 0: 3 V + 1 I; cluster 1: 1 V + 3 I
    monkeypatch.setattr(mmm_plan, "cluster_labels", lambda *a, **k: joint.copy())
    m = method(use_joint=True, mmlm=False)
    m.on_clusters(0, feats, labels)
    for row, (v, r) in enumerate((([0, 1, 2], [0]), ([3], [1, 2, 3]))):
        want = 0.5 * (feats[VIS][v].mean(0) + feats[IR][r].mean(0))
        torch.testing.assert_close(
            m.memories["vr"].features[row], F.normalize(torch.from_numpy(want), dim=0)
        )


def batch_two_views(feats, take=(0, 1, 4, 5), shift=0.0):
    """batch_of() with each visible image's second view (the collate's layout: a second
    block of visible rows with the same indices), the second view = first + ``shift``."""
    b = batch_of(feats, take)
    k = len(take)
    vis, ir = b["images"][:k], b["images"][k:]
    return {
        "images": torch.cat([vis, vis + shift, ir]),
        "modality": torch.cat([b["modality"][:k], b["modality"]]),
        "index": torch.cat([b["index"][:k], b["index"]]),
    }


def test_method_trains_the_inter_form_it_is_given():
    """``inter_form: official`` (per-view terms, both directions summed) reaches the
    training step: on a batch with second views it is well above the paper form."""
    feats, labels = people()
    batch = batch_two_views(feats, shift=0.5)
    inter = {}
    for form in ("paper", "official"):
        m = method(lambda_intra=0.0, inter_start_epoch=1, inter_form=form)
        m.on_clusters(0, feats, labels)
        inter[form] = m.training_step(batch)["inter"].item()
    assert inter["official"] > 2 * inter["paper"] > 0


def test_l1_prototypes_keep_the_two_visible_views_apart():
    """The official L1 Intra has one prototype per visible view (and one for infrared):
    shifting every second view by a constant shifts its own prototype with it (confidence
    1: the prototype is the mean), so the L1 Intra does not change; one prototype for both
    views would sit between them."""
    feats, labels = people()

    def intra(shift):
        m = method(schedule="once", intra_loss="l1", lambda_inter=0.0)
        m.on_clusters(0, feats, labels)
        batch = batch_two_views(feats, shift=shift)
        m._arrays["conf"][:] = 1.0
        m.training_step(batch)  # fills the prototypes of epoch 0
        m.after_optimizer_step()
        m.refresh(1, feats)
        m._arrays["conf"][:] = 1.0
        return m.training_step(batch)["intra"].item()

    assert intra(3.0) == pytest.approx(intra(0.0), rel=1e-5, abs=1e-6)


def test_joint_term_per_modality_sums_a_mean_per_modality(monkeypatch):
    """``joint_reduce: per_modality`` (the official A2's L_all(IR) + L_all(RGB)): L_VR of a
    batch is L_VR of its visible rows plus L_VR of its infrared rows; the default
    (``pooled``) is one mean, so with two visible views the visible rows weigh 2:1."""
    feats, labels = people()
    person = np.r_[labels[VIS], 3 - labels[IR]]
    monkeypatch.setattr(mmm_plan, "cluster_labels", lambda *a, **k: person.copy())
    batch = batch_two_views(feats, shift=0.5)
    halves = [torch.arange(0, 8), torch.arange(8, 12)]  # visible (two views), infrared rows
    got = {}
    for reduce in ("pooled", "per_modality"):
        m = method(use_joint=True, mmlm=False, lambda_intra=0.0, joint_reduce=reduce)
        m.on_clusters(0, feats, labels)
        whole = m.training_step(batch)["nce_joint"].item()
        part = [
            m.training_step({k: v[h] for k, v in batch.items()})["nce_joint"].item() for h in halves
        ]
        got[reduce] = (whole, part)
    whole, (v, r) = got["per_modality"]
    assert whole == pytest.approx(v + r, rel=1e-5)
    whole, (v, r) = got["pooled"]
    assert whole == pytest.approx((8 * v + 4 * r) / 12, rel=1e-5)
    assert abs(v - r) > 1e-3 * (v + r)  # the two weightings differ on this batch


def test_the_fraction_of_merged_visible_clusters_is_logged():
    """Review D6: the epoch's extras say how many visible clusters the matching merged
    into a shared identity: all of them when every person is split in two visible
    clusters, none when the counts match one to one."""
    m = method(lambda_inter=0.0)
    assert m.on_clusters(0, *split_people())["merged_visible_fraction"] == 1.0
    assert m.on_clusters(0, *people())["merged_visible_fraction"] == 0.0
    assert "merged_visible_fraction" not in method(mmlm=False).on_clusters(0, *people())
