"""The methods' core claims on controlled features, where the right answer is known.

Each test builds features whose structure is set by hand (people with a distinct front and
back look; a visible and an infrared cluster of each) and checks that the building block
a paper's claim rests on behaves as claimed — and, as a control, that it does not win
where the claim says it should not matter.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score

from vireid.clustering.multi_memory import (
    cluster_memories,
    match_clusters,
    multi_memory_cost,
    transfer_labels,
)
from vireid.config.schema import MMMMethodCfg
from vireid.methods.mmm import MMM

IDS, DIM = 30, 8


def two_view_people(front_v: float, front_r: float, seed: int, per: int = 40, dim: int = DIM):
    """Visible and infrared features of IDS people, each with a shared identity part and a
    front and a back look; ``front_*`` = the share of front views a modality's cameras see
    (SYSU-MM01's infrared cameras see other directions than its colour cameras)."""
    rng = np.random.default_rng(seed)
    look = rng.normal(size=(IDS, 1, dim)) + rng.normal(size=(IDS, 2, dim))
    out = []
    for front in (front_v, front_r):
        pid = np.repeat(np.arange(IDS), per)
        view = (rng.random(len(pid)) >= front).astype(int)
        x = look[pid, view] + 0.05 * rng.normal(size=(len(pid), dim))
        out.append((x.astype(np.float32), pid))
    return out


def matching_ari(front_v: float, front_r: float, memories: int, seed: int) -> float:
    """ARI of the unified labels after matching (clusters = the true identities)."""
    (xv, yv), (xr, yr) = two_view_people(front_v, front_r, seed)
    mv, cv = cluster_memories(xv, yv, n=memories, n_init=3)
    mr, cr = cluster_memories(xr, yr, n=memories, n_init=3)
    v2r = match_clusters(multi_memory_cost(mv, cv, mr, cr))
    uv, ur = transfer_labels(yv, yr, v2r)
    return adjusted_rand_score(np.r_[yv, yr], np.r_[uv, ur])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_memory_matching_beats_single_memory_when_view_mix_differs(seed):
    # visible cameras see mostly fronts, infrared mostly backs: a single memory (the
    # cluster mean) describes different mixtures in the two modalities; per-view
    # memories still meet their counterpart
    multi = matching_ari(0.9, 0.1, memories=2, seed=seed)
    single = matching_ari(0.9, 0.1, memories=1, seed=seed)
    assert multi > 0.99
    assert single < 0.9
    assert multi - single > 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_multi_and_single_memory_tie_when_view_mix_is_shared(seed):
    assert matching_ari(0.5, 0.5, memories=2, seed=seed) == pytest.approx(1.0)
    assert matching_ari(0.5, 0.5, memories=1, seed=seed) == pytest.approx(1.0)


class _Identity(torch.nn.Module):
    """A stand-in network: the input vector is both the pooled and the BN feature."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.bottleneck = torch.nn.BatchNorm1d(dim)

    def forward(self, x, modality):
        return {"pool": x * self.w, "feat": x * self.w}


def _gain(m: MMM, xv, yv, xr, yr, person: int, near: list[int]) -> torch.Tensor:
    """Change of an infrared sample's cosine similarity to every visible person's centre
    after one small step down MMM's training loss, on a batch of the people ``near``."""
    vis = np.concatenate([np.flatnonzero(yv == p)[:4] for p in near])
    ir = np.concatenate([np.flatnonzero(yr == p)[:4] for p in near])
    x = torch.from_numpy(np.r_[xv[vis], xr[ir]]).requires_grad_(True)
    batch = {
        "images": x,
        "modality": torch.tensor([0] * len(vis) + [1] * len(ir)),
        "index": torch.from_numpy(np.r_[vis, len(xv) + ir]),
    }
    m.training_step(batch)["loss"].backward()
    i = len(vis) + 4 * near.index(person)  # the first infrared sample of ``person``
    centres = F.normalize(
        torch.stack([torch.from_numpy(xv[yv == p].mean(0)) for p in range(IDS)]), dim=1
    )
    f = x[i].detach()
    step = f - 0.05 * f.norm() * F.normalize(x.grad[i], dim=0)
    return F.normalize(step, dim=0) @ centres.T - F.normalize(f, dim=0) @ centres.T


def test_matched_label_loss_pulls_an_infrared_feature_to_its_matched_visible_cluster(
    monkeypatch,
):
    """Y^v := Q·Y^r inside MMM's training step (the paper's reading: L_Inter on the
    unified labels does the cross-modal pull): an infrared sample moves towards the
    visible person it was matched to more than towards any other; under a wrong matching
    it moves towards the wrongly matched person instead."""
    from vireid.methods import mmm_plan

    # 64 dimensions: the people's centres nearly orthogonal, so "towards" is unambiguous
    (xv, yv), (xr, yr) = two_view_people(0.9, 0.1, seed=0, dim=64)
    feats, labels = {0: xv, 1: xr}, {0: yv, 1: yr}
    cfg = MMMMethodCfg(
        use_joint=False, num_memories=2, kmeans_n_init=3, match_start_epoch=1, inter_start_epoch=1
    )
    m = MMM(_Identity(64), cfg)
    m.on_clusters(0, feats, labels)
    np.testing.assert_array_equal(m.v2r, np.arange(IDS))  # the right matching
    gain = _gain(m, xv, yv, xr, yr, person=4, near=[3, 4, 5])
    assert gain[4] > 0 and int(gain.argmax()) == 4  # it gains most towards the matched one
    wrong = np.roll(np.arange(IDS), 1)  # visible person p matched to infrared p − 1
    monkeypatch.setattr(mmm_plan, "match_clusters", lambda *a, **k: wrong.copy())
    m.on_clusters(0, feats, labels)
    gain = _gain(m, xv, yv, xr, yr, person=4, near=[3, 4, 5])
    assert int(gain.argmax()) == 5
