"""ECUL at the method level: what ``plan``, ``on_clusters``, ``training_step`` and
``after_optimizer_step`` do to labels, memory rows, loss values and gradients. Each test
guards a mechanism of the mutant registry (tests/mutants/ecul.py).

A hand-built world (``world``): identities A and B; visible cameras 1 and 2, infrared
camera 3; each image = identity axis + an offset axis of its (identity, camera) + noise.
Joint clusters (the EMCC step is stubbed except in the wiring test): 0 = A's visible and
infrared images (mixed), 1 = B's visible ones, 2 = B's infrared ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from test_emcc import people
from vireid.clustering.camera_search import CameraSearch
from vireid.clustering.emcc import emcc_labels
from vireid.config.schema import ECULMethodCfg
from vireid.data.records import Modality, Sample
from vireid.methods import ecul as ecul_mod

D, VIS, IR = 9, 0, 1
#              v0 v1 v2 v3 v4 v5 v6 v7 | r0 r1 r2 r3 r4 r5
IDENT = np.array([0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 4, 4, 4])
CAMS = np.array([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3])
INTRA = {VIS: np.array([0, 0, 0, 0, 1, 1, 1, 1]), IR: np.array([0, 0, 0, 1, 1, 1])}
JOINT = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 2, 2, 2])
NV = 8


class Identity(nn.Module):
    """feat = images @ W, W = I: the batch's images are its features, with a gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.eye(D))

    def forward(self, images, modality):
        return {"feat": images @ self.w}


def world() -> np.ndarray:
    """Each identity looks different in each camera (its own offset axis per camera)."""
    rng = np.random.default_rng(0)
    x = np.zeros((len(IDENT), D))
    x[np.arange(len(x)), IDENT] = 1.0
    x[np.arange(len(x)), IDENT + CAMS] += 0.8
    x += 0.15 * rng.normal(size=x.shape)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make(
    monkeypatch, epoch: int = 0, intra: dict | None = None, **over
) -> tuple[ecul_mod.ECUL, np.ndarray]:
    """An ECUL after ``on_clusters`` of ``epoch`` on the world (TSMem switch at epoch 2;
    τ 0.5 so that two clusters do not saturate the losses); ``intra`` replaces the
    intra-modality labels."""
    kw = {
        "camera_aware": False,
        "selection_k": 1,
        "tsmem": {"switch_epoch": 2},
        "temp": 0.5,
        "instance_temp": 0.5,
        **over,
    }
    cfg = ECULMethodCfg(**kw)
    monkeypatch.setattr(ecul_mod, "emcc_labels", lambda *a, **k: JOINT.copy())
    method = ecul_mod.ECUL(Identity(), cfg)
    samples = {
        m: [
            Sample(f"{i}.png", int(IDENT[i]), int(CAMS[i]), mod)
            for i in (range(NV) if m == VIS else range(NV, len(IDENT)))
        ]
        for m, mod in ((VIS, Modality.VISIBLE), (IR, Modality.INFRARED))
    }
    method.set_samples(samples)
    x = world()
    method.set_epoch(epoch)
    method.extras = method.on_clusters(epoch, {VIS: x[:NV], IR: x[NV:]}, intra or INTRA)
    return method, x


def batch(x: np.ndarray, idx: list[int]) -> dict:
    idx_t = torch.tensor(idx)
    return {
        "images": torch.from_numpy(x[idx]),
        "modality": (idx_t >= NV).long(),
        "index": idx_t,
    }


def step(method, x, idx) -> dict:
    out = method.training_step(batch(x, idx))
    method.after_optimizer_step()
    return out


def unit(v) -> torch.Tensor:
    return F.normalize(torch.as_tensor(v, dtype=torch.float32), dim=-1)


# ---------------------------------------------------------------- TSMem


def test_stage1_keeps_a_row_per_camera_and_stage2_one_row(monkeypatch):
    """Stage 1 (epoch 1 < switch 2) keeps a proxy per (cluster, camera): every visible
    image has a proxy of its own cluster closer to it than stage 2's one proxy per
    cluster (epoch 2), which sits between the cameras."""
    s1, x = make(monkeypatch, epoch=1)
    s2, _ = make(monkeypatch, epoch=2)
    assert s1.memories["v"].features.shape[0] == 4  # clusters A, B × cameras 1, 2
    assert s2.memories["v"].features.shape[0] == 2
    assert (s1.extras["memory_rule"], s2.extras["memory_rule"]) == ("random", "mean")
    rows = [s.extras["memory_rows_per_cluster"] for s in (s1, s2)]
    assert rows == [1.5, 1]  # (4 visible + 2 infrared rows) / 4 clusters: one IR camera
    f = torch.from_numpy(x[:NV])
    near1 = (f @ s1.memories["v"].features.T).max(1).values
    near2 = (f @ s2.memories["v"].features.T).max(1).values
    assert (near1 > near2 + 0.02).all(), (near1, near2)


def test_stage1_update_moves_one_camera_row_to_one_batch_member(monkeypatch):
    """Stage 1's rule: the row of (A, camera 1) takes a momentum step towards exactly one
    of its batch members (drawn at random); A's camera-2 row and B's rows stay."""
    method, x = make(monkeypatch, epoch=1)
    mem = method.memories["v"]
    before = mem.features.clone()
    step(method, x, [0, 1, 8])  # v0, v1: cluster A, camera 1
    moved = ~torch.isclose(mem.features, before).all(1)
    assert moved.sum() == 1 and mem.features.shape[0] == 4
    old = before[moved][0]
    want = [unit(0.1 * old + 0.9 * torch.from_numpy(x[i])) for i in (0, 1)]
    got = mem.features[moved][0]
    assert any(torch.allclose(got, w, atol=1e-5) for w in want), got


def moved_rows(mem, before) -> list[int]:
    return torch.nonzero(~torch.isclose(mem.features, before).all(1)).ravel().tolist()


def test_stage1_update_moves_each_samples_own_camera_row_in_both_modalities(monkeypatch):
    """Stage 1 moves the row of each sample's own (cluster, camera), infrared included:
    v2, v3 (A, camera 2) move A's camera-2 row only, r1, r2 (A, camera 3) A's infrared
    row. (Camera codes are global, so an infrared row's code is not the modality's.)"""
    method, x = make(monkeypatch, epoch=1)
    cam = torch.from_numpy(np.unique(CAMS, return_inverse=True)[1])  # global codes 0, 1, 2
    a = torch.tensor([0])
    v, r = method.memories["v"], method.memories["r"]
    before = v.features.clone(), r.features.clone()
    step(method, x, [2, 3, 9, 10])
    assert moved_rows(v, before[0]) == v.row_of(a, cam[[2]]).tolist()
    assert moved_rows(r, before[1]) == r.row_of(a, cam[[9]]).tolist()


@pytest.mark.parametrize("read", ["log_mean_exp", "log_sum_exp", "mean"])
def test_stage1_scores_a_cluster_from_its_camera_rows_by_the_read(monkeypatch, read):
    """Stage 1's L_V on a batch equals a brute-force loop over the visible memory's rows:
    cluster c scores log(mean_g e^{s_cg}), log(Σ_g e^{s_cg}) or mean_g s_cg
    (s_cg = f·M_cg / τ) by ``tsmem.camera_read``, then cross-entropy over the clusters."""
    method, x = make(monkeypatch, epoch=1, tsmem={"switch_epoch": 2, "camera_read": read})
    idx = [0, 2, 5, 7, 8]
    out = method.training_step(batch(x, idx))
    mem = method.memories["v"]
    reduce = {
        "log_mean_exp": lambda s: torch.log(torch.exp(s).mean()),
        "log_sum_exp": lambda s: torch.log(torch.exp(s).sum()),
        "mean": lambda s: s.mean(),
    }[read]
    terms = []
    for i in idx[:-1]:  # the visible samples
        s = unit(x[i]) @ mem.features.T / 0.5
        score = torch.stack([reduce(s[mem.row_cluster == c]) for c in range(2)])
        terms.append(-torch.log_softmax(score, 0)[INTRA[VIS][i]])
    torch.testing.assert_close(out["nce_visible"], torch.stack(terms).mean())


def test_stage1_log_mean_exp_pulls_to_the_own_camera_row_and_mean_to_every_row(monkeypatch):
    """The trade-off of the reads (docs/methods/ecul.md, TSMem), at τ 0.05: under
    ``log_mean_exp`` an image's loss moves almost only with its own camera's row of its
    cluster (no cross-camera pull inside the modality); under ``mean`` every camera row
    of the cluster gets the same share. The image (cluster A, camera 1) is blended with
    one of B so that the loss is not saturated at this τ."""
    share = {}
    for read in ("log_mean_exp", "mean"):
        tsmem = {"switch_epoch": 2, "camera_read": read}
        method, x = make(monkeypatch, epoch=1, temp=0.05, tsmem=tsmem)
        mem = method.memories["v"]
        mem.features.requires_grad_(True)
        loss = mem(unit(x[[0]] + x[[4]]), torch.tensor([0]))
        (g,) = torch.autograd.grad(loss, mem.features)
        own, other = (mem.row_of(torch.tensor([0]), torch.tensor([k])) for k in (0, 1))
        pull = g.norm(dim=1)
        share[read] = float(pull[own] / (pull[own] + pull[other]))
    assert share["log_mean_exp"] > 0.85, share  # 0.89 in this world
    assert abs(share["mean"] - 0.5) < 1e-4, share


def test_stage2_update_moves_the_cluster_row_to_the_batch_mean(monkeypatch):
    """From the switch epoch on: one row per cluster, moved towards the batch mean."""
    method, x = make(monkeypatch, epoch=2)
    mem = method.memories["v"]
    before = mem.features.clone()
    step(method, x, [0, 1, 2, 8])  # v0, v1, v2: cluster A (cameras 1, 1, 2)
    target = unit(torch.from_numpy(x[[0, 1, 2]])).mean(0)
    torch.testing.assert_close(mem.features[0], unit(0.1 * before[0] + 0.9 * target))
    torch.testing.assert_close(mem.features[1], before[1])


def test_without_tsmem_the_memory_is_cluster_contrasts(monkeypatch):
    """``switch_epoch: null``: one row per cluster, every sample in batch order."""
    method, x = make(monkeypatch, epoch=0, tsmem={"switch_epoch": None})
    mem = method.memories["v"]
    before = mem.features[0].clone()
    step(method, x, [0, 1, 8])
    seq = unit(0.1 * before + 0.9 * torch.from_numpy(x[0]))
    seq = unit(0.1 * seq + 0.9 * torch.from_numpy(x[1]))
    torch.testing.assert_close(mem.features[0], seq)
    assert method.extras["memory_rows_per_cluster"] == 1


# ---------------------------------------------------------------- cross-modal memory


def cross_proxies(method) -> torch.Tensor:
    mem = method.memories["vr"]
    return mem.proxies() if hasattr(mem, "proxies") else mem.features


def test_cross_modal_proxy_is_the_two_modalities_average_at_the_epoch_start(monkeypatch):
    """Joint cluster 0 holds 4 visible and 3 infrared images: its proxy is the mean of
    the two modalities' (normalised) means, equally close to both, not the plain
    centroid of its 7 images."""
    method, x = make(monkeypatch)
    v = unit(x[:4].mean(0))
    r = unit(x[8:11].mean(0))
    p = cross_proxies(method)[0]
    torch.testing.assert_close(p, unit(v + r))
    assert abs(float(p @ v) - float(p @ r)) < 1e-6


def test_cross_modal_proxy_stays_an_average_under_one_modality_batches(monkeypatch):
    """Batches rarely hold both modalities of a joint cluster. After infrared-only
    updates the proxy still holds the visible half: its similarity to the visible
    images of the cluster stays where it was (PCAL's single row drifts to an infrared
    image)."""
    method, x = make(monkeypatch)
    v = unit(x[:4].mean(0))
    start = float(cross_proxies(method)[0] @ v)
    for _ in range(4):
        step(method, x, [8, 9, 10])  # infrared images of joint cluster 0 only
    after = float(cross_proxies(method)[0] @ v)
    assert after > start - 0.05, (start, after)
    single, _ = make(monkeypatch, cross_memory="single")
    for _ in range(4):
        step(single, x, [8, 9, 10])
    assert float(cross_proxies(single)[0] @ v) < start - 0.1  # the contrast this fixes


# ---------------------------------------------------------------- selection and terms


def test_cross_loss_only_on_mixed_joint_clusters(monkeypatch):
    """Joint clusters 1 (visible only) and 2 (infrared only) carry no cross-modal label."""
    method, x = make(monkeypatch)
    want = np.where(np.isin(JOINT, [0]), JOINT, -1)
    assert method._arrays["joint_loss"].tolist() == want.tolist()
    assert "nce_cross" not in method.training_step(batch(x, [4, 5, 11, 12]))
    assert "nce_cross" in method.training_step(batch(x, [0, 12]))


def test_instance_selection_keeps_the_nearest_other_modality_member(monkeypatch):
    """``selection: nearest``, k 1: v0's only positive is the infrared image of its
    joint cluster most similar to it; images of single-modality clusters have none."""
    method, x = make(monkeypatch)
    pos = method._arrays["positives"].numpy()
    nearest = 8 + int(np.argmax(x[8:11] @ x[0]))
    assert pos[0][pos[0] >= 0].tolist() == [nearest]
    assert (pos[4:8] < 0).all() and (pos[11:] < 0).all()


def grad(method, b) -> tuple[torch.Tensor, dict]:
    method.model.zero_grad()
    out = method.training_step(b)
    out["loss"].backward()
    return method.model.w.grad.clone(), out


def test_every_term_enters_the_loss_with_its_weight(monkeypatch):
    """loss = L_V + L_R + λ_cross·L_VR + λ_ins·L_ins with the logged (unweighted) terms."""
    method, x = make(monkeypatch, cross_weight=0.7, instance_weight=1.9)
    out = method.training_step(batch(x, [0, 1, 2, 8, 9, 12]))
    assert set(out) == {"loss", "nce_visible", "nce_infrared", "nce_cross", "instance"}
    want = out["nce_visible"] + out["nce_infrared"] + 0.7 * out["nce_cross"]
    want = want + 1.9 * out["instance"]
    torch.testing.assert_close(out["loss"].detach(), want)
    assert all(float(out[k]) > 0 for k in ("nce_cross", "instance"))


@pytest.mark.parametrize(
    "term,key", [("instance_weight", "instance"), ("cross_weight", "nce_cross")]
)
def test_cross_and_instance_terms_reach_the_gradient(monkeypatch, term, key):
    """Weighting a term 1 instead of 0 changes the network's gradient (a term that is
    logged but detached, or weighted 0, would not)."""
    b = batch(world(), [0, 1, 2, 8, 9, 12])
    on, out = grad(make(monkeypatch, **{term: 1.0})[0], b)
    off, _ = grad(make(monkeypatch, **{term: 0.0})[0], b)
    assert key in out
    assert (on - off).abs().max() > 1e-3


@pytest.mark.parametrize("epoch,active", [(0, False), (1, True)])
def test_cross_terms_start_at_cross_start_epoch(monkeypatch, epoch, active):
    """``cross_start_epoch: 2`` (1-based): in epoch 1 no cross-modal or instance term is
    computed and neither memory moves; from epoch 2 on both are."""
    method, x = make(monkeypatch, epoch=epoch, cross_start_epoch=2)
    vr, bank = method.memories["vr"], method.memories["instance"]
    before = vr.features.clone(), bank.features.clone()
    x2 = x.copy()
    x2[[0, 8]] = x[[2, 10]]  # features that differ from the rows they update
    out = step(method, x2, [0, 8])
    assert ("nce_cross" in out, "instance" in out) == (active, active)
    assert bool(moved_rows(vr, before[0])) == active
    assert bool(moved_rows(bank, before[1])) == active


def test_instance_memory_moves_each_batch_samples_row_by_its_momentum(monkeypatch):
    """After a step, the instance memory row of every batch sample (and no other) takes a
    momentum step (0.2) towards the sample's feature."""
    method, x = make(monkeypatch, instance_momentum=0.2)
    bank = method.memories["instance"]
    before = bank.features.clone()
    x2 = x.copy()
    x2[[0, 9]] = x[[1, 10]]  # v0 and r1 seen with other features than their rows
    step(method, x2, [0, 9])
    assert moved_rows(bank, before) == [0, 9]
    for i in (0, 9):
        torch.testing.assert_close(bank.features[i], unit(0.2 * before[i] + 0.8 * unit(x2[i])))


def test_instance_term_leaves_out_the_joint_cluster_not_the_intra_cluster(monkeypatch):
    """L_ins on a batch equals a brute-force loop whose denominator holds the selected
    positives and the instances outside the sample's *joint* cluster. The infrared intra
    ids are swapped (A's infrared = intra cluster 1) so that they disagree with the joint
    ids: reading the intra ids would count B's infrared images as cluster mates."""
    intra = {VIS: INTRA[VIS], IR: 1 - INTRA[IR]}
    method, x = make(monkeypatch, intra=intra)
    idx = [0, 3, 8, 10, 12]
    out = method.training_step(batch(x, idx))
    bank = method.memories["instance"].features
    pos = method._arrays["positives"]
    terms = []
    for i in idx:
        p = pos[i][pos[i] >= 0]
        if not len(p):
            continue
        s = unit(x[i]) @ bank.T / 0.5
        den = torch.cat([p, torch.from_numpy(np.flatnonzero(JOINT[i] != JOINT))])
        terms.append(torch.logsumexp(s[den], 0) - torch.logsumexp(s[p], 0))
    assert len(terms) == 4  # v0, v3, r0, r2 (mixed cluster A); r4 (B) has none
    torch.testing.assert_close(out["instance"], torch.stack(terms).mean())


# ---------------------------------------------------------------- EMCC wiring


def people_world():
    x, ir, cam = people(n_ids=10, per=8, d=16, seed=4)
    order = np.r_[np.flatnonzero(~ir), np.flatnonzero(ir)]  # visible first, as the plan
    return x[order], ir[order], cam[order]


@pytest.mark.parametrize(
    "rule,k3_range", [("expansion", "global"), ("search", "global"), ("search", "camera")]
)
def test_plan_clusters_with_the_cameras_and_the_k3_filter(rule, k3_range):
    """The plan's joint labels are EMCC's with the samples' cameras (k2 expansion or
    the camera-aware search, with its k3 range) and the k3 filter; on this data both
    change the labels."""
    from vireid.methods.ecul import ECUL

    x, ir, cam = people_world()
    cfg = ECULMethodCfg(joint_k1=12, joint_k2=4, joint_k3=12, camera_rule=rule, selection_k=1)
    cfg.cluster.eps, cfg.cluster.min_samples = 0.7, 2
    cfg.camera_search.k1_intra, cfg.camera_search.k2_inter = 3, 3
    cfg.camera_search.k3_range = k3_range
    method = ECUL(Identity(), cfg)
    mods = (Modality.VISIBLE, Modality.INFRARED)
    method.set_samples(
        {m: [Sample("x", 0, int(c), mods[m]) for c in cam[ir == bool(m)]] for m in (VIS, IR)}
    )
    nv = int((~ir).sum())
    labels = {VIS: np.zeros(nv, np.int64), IR: np.zeros(len(x) - nv, np.int64)}
    got = method.plan(0, {VIS: x[:nv], IR: x[nv:]}, labels)["joint"]
    search = CameraSearch(3, 2, 3, k3_range) if rule == "search" else None

    def labels_with(camera, k3):
        return emcc_labels(x, 12, 4, k3, 0.7, 2, modality=ir, camera=camera, camera_search=search)

    want = labels_with(cam, 12)
    assert got.tolist() == want.tolist()
    if rule == "expansion":
        assert want.tolist() != labels_with(None, 12).tolist()
    if k3_range == "camera":
        search = CameraSearch(3, 2, 3, "global")
        assert want.tolist() != labels_with(cam, 12).tolist()
    assert want.tolist() != labels_with(cam, None).tolist()
