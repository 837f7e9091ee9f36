"""MMM's training step and pseudo-label plan on hand-made features (a linear stand-in for
the network), so each term can be checked against its formula in milliseconds."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vireid.config.loader import ConfigError
from vireid.config.schema import MMMMethodCfg
from vireid.losses.mmd import inter_modality_mmd, mmd2
from vireid.losses.triplet import batch_hard_triplet
from vireid.methods import mmm_plan
from vireid.methods.mmm import MMM, second_view_rows, weighted_centres
from vireid.models.two_stream import TwoStreamNet

VIS, IR = 0, 1
D = 6


class Linear(nn.Module):
    """feat = BN-free linear map of the input vector; pool = the input itself."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(D, D, bias=False)
        nn.init.eye_(self.proj.weight)
        self.bottleneck = nn.BatchNorm1d(D)

    def forward(self, x, modality):
        return {"pool": x, "feat": self.proj(x)}


def people(seed=0, n=4, per=4):
    """n identities, per visible and per infrared samples each, well separated."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(n, D)) * 3
    fv = np.repeat(centre, per, 0) + 0.1 * rng.normal(size=(n * per, D))
    fr = np.repeat(centre, per, 0) + 0.3 + 0.1 * rng.normal(size=(n * per, D))
    labels = np.repeat(np.arange(n), per)
    # infrared clusters numbered in reverse, so the identity map is not the right match
    return {VIS: fv.astype(np.float32), IR: fr.astype(np.float32)}, {
        VIS: labels,
        IR: n - 1 - labels,
    }


def method(**kw) -> MMM:
    cfg = MMMMethodCfg(use_joint=False, num_memories=2, kmeans_n_init=1, match_start_epoch=1)
    return MMM(Linear(), cfg.model_copy(update=kw))


def batch_of(feats, take=(0, 1, 4, 5)):
    """Visible rows then infrared rows of the samples ``take`` (global index: infrared
    after visible)."""
    nv = len(feats[VIS])
    x = torch.from_numpy(np.r_[feats[VIS][list(take)], feats[IR][list(take)]])
    idx = torch.tensor([*take, *(nv + t for t in take)])
    mod = torch.tensor([VIS] * len(take) + [IR] * len(take))
    return {"images": x, "modality": mod, "index": idx}


def test_matched_labels_enter_the_cross_term():
    """+MMLM with L_Cross (the PGM-style option): the loss depends on which clusters were
    matched (it did not: the matching only drove the sampler), through the two-way
    ClusterNCE against the partner identity's memory in the other modality."""
    feats, labels = people()
    m = method(lambda_intra=0.0, lambda_inter=0.0, lambda_cross=0.25)
    m.on_clusters(0, feats, labels)
    assert m.v2r.tolist() == [3, 2, 1, 0]
    batch = batch_of(feats)
    right = m.training_step(batch)
    assert "cross" in right
    p = m.plan(0, feats, labels)
    assert p["partner"].tolist() == [0, 1, 2, 3]  # identities numbered by infrared cluster
    p["partner"] = np.array([3, 2, 1, 0])  # a wrong matching, same clusters
    m._use_plan(p)
    bad = m.training_step(batch)
    assert bad["cross"] > right["cross"] + 1.0  # the right partners are far cheaper
    assert not torch.isclose(bad["loss"], right["loss"])
    # and the term is the two-way ClusterNCE against the partner's memory: visible
    # identities are numbered by their infrared cluster (visible clusters 0, 1 → rows 3, 2)
    f = batch["images"]
    m._use_plan(m.plan(0, feats, labels))
    pv = torch.tensor([3, 3, 2, 2])  # visible clusters 0,0,1,1 → infrared 3,3,2,2
    pr = torch.tensor([3, 3, 2, 2])  # their infrared samples → visible identity rows 3,3,2,2
    want = 0.5 * (m.memories["r"](f[:4], pv) + m.memories["v"](f[4:], pr))
    assert m.training_step(batch)["cross"].item() == pytest.approx(want.item(), rel=1e-6)


def test_matched_labels_train_without_the_cross_term():
    """The paper's reading (default, no L_Cross): the matching still trains the network,
    because the merged visible identities are L_V's classes. A matching that merges the
    halves of different persons gives a higher L_V than the right one."""
    feats, labels = split_people()
    m = method(lambda_intra=0.0, lambda_inter=0.0)
    assert m.cfg.lambda_cross == 0.0
    m.on_clusters(0, feats, labels)
    batch = batch_of(feats, [0, 2, 4, 6, 8, 10, 12, 14])
    right = m.training_step(batch)
    assert "cross" not in right
    wrong = np.array([3, 2, 2, 1, 1, 0, 0, 3])  # each person's halves go to two persons
    monkey = pytest.MonkeyPatch()
    monkey.setattr(mmm_plan, "match_clusters", lambda *a, **k: wrong.copy())
    m.on_clusters(0, feats, labels)
    monkey.undo()
    bad = m.training_step(batch)
    assert bad["nce_visible"] > right["nce_visible"] + 1.0


def test_matching_waits_for_the_warm_up():
    feats, labels = people()
    m = method(match_start_epoch=3)
    for epoch in (0, 1):
        m.on_clusters(epoch, feats, labels)
        assert m.v2r is None and m.sampling == "paired"
        assert "cross" not in m.training_step(batch_of(feats))
    m.on_clusters(2, feats, labels)
    assert m.v2r is not None and m.sampling == "cross"


def test_schedule_once_refits_confidences_and_centres():
    feats, labels = people()
    m = method(schedule="once")
    m.on_clusters(0, feats, labels)
    assert m.freeze_labels
    before = {k: v.features.clone() for k, v in m.memories.items()}
    centres = m._centres[VIS].clone()
    moved = {
        k: v + np.float32(0.5) * np.sin(np.arange(v.size)).reshape(v.shape)
        for k, v in feats.items()
    }
    extras = m.refresh(1, moved)
    assert "visible_confidence" in extras
    assert not torch.allclose(m._centres[VIS], centres)
    assert not torch.allclose(m.memories["v"].features, before["v"])
    assert m.v2r.tolist() == [3, 2, 1, 0]  # the labels and the matching stay frozen
    w = m._arrays["conf"][: len(labels[VIS])].numpy()
    ident = m.frozen["plan"]["ident"][VIS]  # visible identities (numbered by partner)
    want = F.normalize(torch.from_numpy(weighted_centres(moved[VIS], ident, w)), dim=1)
    torch.testing.assert_close(m.memories["v"].features, want)


def test_official_l1_intra_on_the_codes_scale():
    """Confidence × L1 averaged over dimensions, pre-BN feature vs the previous epoch's
    prototype; the visible mean plus the infrared mean (main.py's self-mimic term)."""
    feats, labels = people()
    m = method(schedule="once", intra_loss="l1", lambda_inter=0.0, lambda_cross=0.0)
    m.on_clusters(0, feats, labels)
    batch = batch_of(feats)
    assert "intra" not in m.training_step(batch)  # no prototypes in the matching epoch
    m.after_optimizer_step()
    m.refresh(1, feats)
    out = m.training_step(batch)
    x, w = batch["images"], m._arrays["conf"][batch["index"]]
    lab = m._arrays["intra"][batch["index"]]
    proto = {  # the batch is its own (only) source: prototype = Σ w·f / count per label
        (mod, y): (x[s] * w[s, None]).sum(0) / s.sum()
        for mod in (VIS, IR)
        for y in lab.unique().tolist()
        if (s := (batch["modality"] == mod) & (lab == y)).any()
    }
    per = torch.stack(
        [
            (x[i] - proto[(int(batch["modality"][i]), int(lab[i]))]).abs().mean() * w[i]
            for i in range(len(x))
        ]
    )
    want = per[:4].mean() + per[4:].mean()
    assert out["intra"].item() == pytest.approx(want.item(), rel=1e-5)
    assert out["intra"].item() < 1.0  # a dimension mean, not a sum over D


def test_l1_intra_needs_frozen_labels():
    with pytest.raises(ConfigError, match="schedule=once"):
        method(intra_loss="l1")


def test_official_inter_sums_views_and_directions():
    torch.manual_seed(0)
    f = torch.randn(12, D, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
    is_ir = torch.tensor([False] * 8 + [True] * 4)
    view2 = torch.tensor([False] * 4 + [True] * 4 + [False] * 4)
    got = inter_modality_mmd(f, labels, is_ir, view2, "official")
    want = 0
    for y in (0, 1):
        r = f[is_ir & (labels == y)]
        for k in (False, True):
            v = f[~is_ir & (view2 == k) & (labels == y)]
            want = want + mmd2(v, r) + mmd2(r, v)
    assert got.item() == pytest.approx(want.item() / 2, rel=1e-6)
    paper = inter_modality_mmd(f, labels, is_ir, view2, "paper")
    assert got.item() > 2 * paper.item()


def test_second_view_rows_follow_the_collate_layout():
    idx = torch.tensor([5, 7, 5, 7, 20, 21])
    mod = torch.tensor([0, 0, 0, 0, 1, 1])
    assert second_view_rows(idx, mod).tolist() == [False, False, True, True, False, False]
    assert not second_view_rows(torch.tensor([5, 7, 20]), torch.tensor([0, 0, 1])).any()


def test_unified_triplet_uses_the_matched_labels():
    feats, labels = people()
    m = method(lambda_triplet=1.0)
    m.on_clusters(0, feats, labels)
    batch = batch_of(feats)
    out = m.training_step(batch)
    u = m._arrays["unified"][batch["index"]]
    assert u[:4].tolist() == u[4:].tolist()  # a matched pair shares its identity
    want = batch_hard_triplet(batch["images"], u, 0.2)
    assert out["triplet"].item() == pytest.approx(want.item(), rel=1e-6)


def test_non_local_blocks_train_at_the_backbone_rate():
    net = TwoStreamNet("resnet18", non_local=True, width=0.25)
    groups = MMM(net, MMMMethodCfg()).param_groups(0.1, 0.1)
    slow = {id(p) for p in groups[0]["params"]}
    nl = [p for p in net.non_local.parameters()]
    assert nl and all(id(p) in slow for p in nl)
    assert groups[0]["lr"] == pytest.approx(0.01)
    fast = {id(p) for p in groups[1]["params"]}
    assert {id(p) for p in net.bottleneck.parameters() if p.requires_grad} <= fast


def test_official_matching_options_reach_the_plan():
    """matching=greedy, cost=infrared and compat_skip_last_cluster each change the plan's
    matching, to exactly what the building blocks give with those options."""
    from vireid.clustering.multi_memory import cluster_memories, match_clusters, multi_memory_cost

    rng = np.random.default_rng(1)
    feats = {m: rng.normal(size=(48, D)).astype(np.float32) for m in (VIS, IR)}
    labels = {m: np.repeat(np.arange(8), 6) for m in (VIS, IR)}  # no real correspondence
    mv, cv = cluster_memories(feats[VIS], labels[VIS], 2, 1)
    mr, cr = cluster_memories(feats[IR], labels[IR], 2, 1)
    seen = set()
    for opts in (
        {},
        {"matching": "greedy"},
        {"cost": "infrared"},
        {"compat_skip_last_cluster": True},
        {"matching": "greedy", "cost": "infrared", "compat_skip_last_cluster": True},
    ):
        m = method(**opts)
        m.on_clusters(0, feats, labels)
        cost = multi_memory_cost(mv, cv, mr, cr, opts.get("cost", "visible"))
        want = match_clusters(
            cost, opts.get("matching", "hungarian"), opts.get("compat_skip_last_cluster", False)
        )
        assert m.v2r.tolist() == want.tolist(), opts
        seen.add(tuple(want.tolist()))
    assert len(seen) == 5  # every option made a difference on this data


def test_joint_clusters_of_one_modality_are_dropped(monkeypatch):
    """Only joint clusters that hold both modalities feed L_VR (MMM's associated clusters):
    a visible-only or infrared-only joint cluster becomes −1, the rest are renumbered."""
    feats, labels = people(n=1, per=4)
    #            visible: 0 0 1 2      infrared: 0 1 3 −1   (2: visible only, 3: infrared only)
    joint = np.array([0, 0, 1, 2, 0, 1, 3, -1])
    monkeypatch.setattr(mmm_plan, "cluster_labels", lambda *a, **k: joint.copy())
    got, mixed = mmm_plan.joint_labels(method(use_joint=True).cfg, feats, labels)
    assert got.tolist() == [0, 0, 1, -1, 0, 1, -1, -1]
    assert mixed.tolist() == [True, True, True, False, True, True, False, False]


def test_default_intra_is_the_mean_squared_distance_to_the_centre():
    """The paper-default L_Intra (``intra_loss: l2sq``): per clustered sample, the squared
    L2 distance of its normalised feature to its modality's (confidence-weighted) centre,
    averaged over the samples; outliers are left out."""
    m = method()
    assert m.cfg.intra_loss == "l2sq"
    g = torch.Generator().manual_seed(0)
    m._centres = {VIS: torch.randn(2, D, generator=g), IR: torch.randn(3, D, generator=g)}
    f = torch.randn(5, D, generator=g)
    mod = torch.tensor([VIS, VIS, IR, IR, IR])
    y = torch.tensor([1, -1, 2, 0, 0])
    got = m._intra(f, mod, {"intra": y})
    fn = F.normalize(f, dim=1).numpy().astype(np.float64)
    want = np.mean(
        [
            np.sum((fn[i] - m._centres[int(mod[i])][int(y[i])].numpy()) ** 2)
            for i in range(5)
            if y[i] >= 0
        ]
    )
    assert float(got) == pytest.approx(want, rel=1e-6)
    assert float(m._intra(f, mod, {"intra": torch.full((5,), -1)})) == 0.0


def split_people(offset=0.8):
    """people() with every visible identity split into two visible clusters (its two
    halves sit ± ``offset`` apart along a per-person direction, like a front and a back
    view): C_v = 8, C_r = 4, so the progressive Hungarian attaches the second half of each
    identity to the same infrared cluster in its second pass (many-to-one), the normal
    case on SYSU (review N2)."""
    feats, labels = people()
    rng = np.random.default_rng(5)
    u = rng.normal(size=(4, D))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    half = np.arange(16) // 2 % 2  # visible sample k: person k // 4, cluster k // 2
    feats[VIS] = feats[VIS] + (offset * (2 * half - 1)[:, None] * u[np.arange(16) // 4]).astype(
        np.float32
    )
    labels[VIS] = np.arange(16) // 2
    return feats, labels


def test_merged_visible_clusters_train_as_one_identity():
    """Y^v := QY^r reaches every term that speaks of an identity (review N2): after the
    matching, the two visible halves of a person are one identity for L_V, the Intra
    centre and the infrared→visible cross term. Before, an infrared sample's cross NCE was
    floored near ln 2 (the other half was a negative) and every step pushed each visible
    half away from the other."""
    feats, labels = split_people()
    m = method(lambda_cross=0.25, lambda_inter=0.0)
    m.on_clusters(0, feats, labels)
    u = m._arrays["unified"][:16]
    assert (u[0::2] == u[1::2]).all() and len(u.unique()) == 4  # halves share a person
    take = [0, 2, 4, 6, 8, 10, 12, 14]  # one sample of every visible cluster
    batch = batch_of(feats, take)
    ir_only = {k: v[len(take) :] for k, v in batch.items()}
    assert m.training_step(ir_only)["cross"] < 0.25 * np.log(2)  # infrared→visible half
    x = batch["images"].clone().requires_grad_(True)
    m.training_step({**batch, "images": x})["loss"].backward()
    step = x.detach() - 0.05 * x.grad
    for i, k in enumerate(take):  # visible rows: a step brings each closer to its other half
        other = torch.from_numpy(feats[VIS][(k ^ 2) // 2 * 2 : (k ^ 2) // 2 * 2 + 2].mean(0))
        before = F.cosine_similarity(x[i].detach(), other, dim=0)
        assert F.cosine_similarity(step[i], other, dim=0) > before, k


def test_sampler_draws_the_matched_identities():
    """After the matching, batches are drawn by the unified labels: a person's visible
    and infrared samples carry one identity (people() numbers infrared clusters in
    reverse, so the per-modality labels would pair the wrong people)."""
    feats, labels = people()
    m = method()
    m.on_clusters(0, feats, labels)
    assert m.sampling == "cross"
    lab = m.sampling_labels
    assert (lab[VIS] == lab[IR]).all()  # sample j of either modality is person j // 4
    assert len(np.unique(lab[VIS])) == 4


NOISY = [0, 4, 8]


def noisy_people():
    """people() where one visible sample of clusters 1, 2, 3 belongs to another person:
    its ClusterNCE loss is high, so the GMM gives it a low confidence."""
    feats, labels = people()
    labels[VIS] = labels[VIS].copy()
    labels[VIS][NOISY] = [1, 2, 3]
    return feats, labels


def test_gmm_confidences_weight_the_memory_and_the_intra_target():
    """SCA: the mislabelled samples get a low GMM confidence, so the visible memory rows
    and the Intra centres (Σ w·f / N) sit nearer a cluster's confident members than the
    plain centroid does, and those members' Intra term is smaller than it would be
    against the plain centroid."""
    feats, labels = noisy_people()
    m = method(mmlm=False, lambda_inter=0.0)
    extras = m.on_clusters(0, feats, labels)
    w = m._arrays["conf"][:16].numpy()
    assert w[NOISY].max() < 0.5 < w[[1, 2, 3, 5]].min()
    assert extras["visible_confidence"] < 0.9
    clean = np.ones(16, bool)
    clean[NOISY] = False
    for y in (1, 2, 3):
        members = clean & (labels[VIS] == y)
        target = F.normalize(torch.from_numpy(feats[VIS][members].mean(0)), dim=0)
        plain = F.normalize(torch.from_numpy(feats[VIS][labels[VIS] == y].mean(0)), dim=0)
        for row in (m.memories["v"].features[y], m._centres[VIS][y]):
            assert row @ target > plain @ target + 1e-4, y
    take = [1, 2, 5, 6]  # confident visible members only
    out = m.training_step(batch_of(feats, take))
    f = F.normalize(torch.from_numpy(np.r_[feats[VIS][take], feats[IR][take]]), dim=1)
    y = torch.from_numpy(np.r_[labels[VIS][take], labels[IR][take]])
    plain = {
        mod: F.normalize(
            torch.stack([torch.from_numpy(feats[mod][labels[mod] == k].mean(0)) for k in range(4)]),
            dim=1,
        )
        for mod in (VIS, IR)
    }
    c = torch.cat([plain[VIS][y[:4]], plain[IR][y[4:]]])
    assert out["intra"] < (f - c).pow(2).sum(1).mean() - 1e-5


def test_memory_update_is_scaled_by_the_confidence():
    """A sample of zero confidence leaves its memory row where it was; a confident one
    moves it (the paper's confidence-weighted memory)."""
    feats, labels = people()
    m = method(mmlm=False, lambda_inter=0.0)
    m.on_clusters(0, feats, labels)
    batch = batch_of(feats, [0, 1])
    m._arrays["conf"][:] = 0.0
    before = m.memories["v"].features.clone()
    m.training_step(batch)
    m.after_optimizer_step()
    torch.testing.assert_close(m.memories["v"].features, before)
    m._arrays["conf"][:] = 1.0
    m.training_step(batch)
    m.after_optimizer_step()
    assert not torch.allclose(m.memories["v"].features[0], before[0])


def test_intra_and_inter_wait_for_their_start_epochs():
    """1-based start epochs: Intra from intra_start_epoch, Inter from inter_start_epoch
    (paper: 1 and 15)."""
    feats, labels = people()
    m = method(intra_start_epoch=2, inter_start_epoch=3)
    m.on_clusters(0, feats, labels)
    seen = []
    for epoch in range(3):
        m.set_epoch(epoch)
        out = m.training_step(batch_of(feats))
        seen.append({k for k in ("intra", "inter") if k in out})
    assert seen == [set(), {"intra"}, {"intra", "inter"}]


def stage_b(**kw):
    """The official stage B's method on people(): shared classifier, CE warm-up of one
    epoch, no memory terms (labels_from is only checked for presence here)."""
    opts = dict(
        schedule="once",
        labels_from="stage_a.pt",
        lambda_id=1.0,
        id_warmup_epochs=1,
        lambda_cmc=0.0,
        lambda_inter=0.0,
        lambda_intra=0.0,
    )
    m = method(**{**opts, **kw})
    feats, labels = people()
    m.on_clusters(0, feats, labels)
    return m, feats


def test_shared_classifier_ce_warm_up_then_confidence_weighted():
    """The official stage B's soft-ID CE: in the warm-up epochs the plain CE is the whole
    loss; afterwards each sample's CE is weighted by its GMM confidence (a zero-confidence
    sample adds nothing), and the memory terms are off (lambda_cmc 0)."""
    m, feats = stage_b()
    assert m.classifier.out_features == 4  # the unified identities
    batch = batch_of(feats)
    warm = m.training_step(batch)
    assert set(warm) == {"loss", "id"}
    m._arrays["conf"][:] = 0.5
    assert m.training_step(batch)["id"] == pytest.approx(float(warm["id"]))  # unweighted
    m.set_epoch(1)
    half = m.training_step(batch)
    assert set(half) == {"loss", "id"}  # no nce_* terms
    assert half["id"] == pytest.approx(0.5 * float(warm["id"]), rel=1e-5)
    m._arrays["conf"][batch["index"][0]] = 0.0
    assert m.training_step(batch)["id"] < half["id"]
    x = batch["images"].clone().requires_grad_(True)
    m.training_step({**batch, "images": x})["loss"].backward()
    assert m.classifier.weight.grad.abs().sum() > 0


def test_stage_b_options_need_frozen_labels():
    with pytest.raises(ValueError, match="labels_from"):
        MMMMethodCfg(lambda_id=1.0)
    with pytest.raises(ValueError, match="schedule: once"):
        MMMMethodCfg(labels_from="a.pt")
    with pytest.raises(ValueError, match="lambda_id"):
        MMMMethodCfg(id_warmup_epochs=5)


def test_joint_clusters_of_one_modality_can_stay_as_negatives(monkeypatch):
    """``joint_single_modality: negatives`` (the official code): a one-modality joint
    cluster keeps its memory row (its modality's mean) but trains nothing."""
    feats, labels = people(n=1, per=4)
    joint = np.array([0, 0, 1, 2, 0, 1, 3, -1])
    monkeypatch.setattr(mmm_plan, "cluster_labels", lambda *a, **k: joint.copy())
    m = method(use_joint=True, joint_single_modality="negatives", mmlm=False)
    m.on_clusters(0, feats, labels)
    assert m.memories["vr"].num_clusters == 4
    want = F.normalize(torch.from_numpy(feats[IR][2]), dim=0)  # cluster 3: infrared only
    torch.testing.assert_close(m.memories["vr"].features[3], want)
    assert m._arrays["joint"].tolist() == [0, 0, 1, -1, 0, 1, -1, -1]


def test_joint_clusters_link_the_modalities_more_than_plain_jaccard():
    """CMC's joint clustering uses the modality-balanced k-reciprocal expansion: with a
    strong modality shift and 3 visible images per infrared one, more samples land in
    clusters holding both modalities (the ones that train L_VR) than with the plain
    Jaccard on the same features."""
    from vireid.clustering import cluster_labels

    rng = np.random.default_rng(0)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        c, s = rng.normal(size=(12, 16)), rng.normal(size=16)
        fv = np.repeat(c, 12, 0) + 0.6 * rng.normal(size=(144, 16))
        fr = np.repeat(c, 4, 0) + 4 * s / np.linalg.norm(s) + 0.6 * rng.normal(size=(48, 16))
        x = np.r_[fv, fr] / np.linalg.norm(np.r_[fv, fr], axis=1, keepdims=True)
        feats = {VIS: x[:144].astype(np.float32), IR: x[144:].astype(np.float32)}
        labels = {VIS: np.zeros(144, np.int64), IR: np.zeros(48, np.int64)}
        cfg = method(use_joint=True, mmlm=False, joint_k1=15, joint_k2=6).cfg
        cfg = cfg.model_copy(
            update={"cluster": cfg.cluster.model_copy(update={"eps": 0.6, "min_samples": 3})}
        )
        _, mixed = mmm_plan.joint_labels(cfg, feats, labels)
        plain = cluster_labels(x.astype(np.float32), 15, 6, 0.6, 3)
        ir = np.arange(192) >= 144
        both = np.intersect1d(plain[~ir], plain[ir])
        assert mixed.mean() > np.isin(plain, both[both >= 0]).mean() + 0.05, seed
