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
from vireid.losses.memory import ClusterMemory

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


def _pull(xv, yv, xr, yr, v2r, person: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarity of one infrared feature of ``person`` to every visible person's
    centre, before and after one ClusterNCE gradient step against the visible memory
    indexed by the unified labels that ``v2r`` gives."""
    unified_v, unified_r = transfer_labels(yv, yr, v2r)
    ids = int(unified_v.max()) + 1
    centres = torch.zeros(ids, xv.shape[1])
    for u in np.unique(unified_v):
        centres[u] = torch.from_numpy(xv[unified_v == u].mean(0))
    memory = ClusterMemory(xv.shape[1], ids)
    memory.reset(centres)
    i = int(np.flatnonzero(yr == person)[0])
    f = torch.from_numpy(xr[i]).clone().requires_grad_(True)
    memory(f[None], torch.tensor([int(unified_r[i])])).backward()
    person_centres = F.normalize(
        torch.stack([torch.from_numpy(xv[yv == p].mean(0)) for p in range(IDS)]), dim=1
    )
    before = F.normalize(f.detach(), dim=0) @ person_centres.T
    step = 0.05 * f.detach().norm() * F.normalize(f.grad, dim=0)  # a small step downhill
    after = F.normalize(f.detach() - step, dim=0) @ person_centres.T
    return before, after


def test_matched_label_loss_pulls_an_infrared_feature_to_its_matched_visible_cluster():
    """Y^v := Q·Y^r, then an identity-level loss on the unified labels: an infrared sample
    moves towards the visible cluster it was matched to more than towards any other; under a
    wrong matching it moves towards the wrongly matched person instead."""
    # 64 dimensions: the people's centres nearly orthogonal, so "towards" is unambiguous
    (xv, yv), (xr, yr) = two_view_people(0.9, 0.1, seed=0, dim=64)
    mv, cv = cluster_memories(xv, yv, n=2, n_init=3)
    mr, cr = cluster_memories(xr, yr, n=2, n_init=3)
    v2r = match_clusters(multi_memory_cost(mv, cv, mr, cr))
    np.testing.assert_array_equal(v2r, np.arange(IDS))  # the right matching
    before, after = _pull(xv, yv, xr, yr, v2r, person=4)
    assert after[4] > before[4]
    assert int((after - before).argmax()) == 4  # it gains most towards the matched one
    wrong = np.roll(np.arange(IDS), 1)  # visible person p matched to infrared p − 1
    before, after = _pull(xv, yv, xr, yr, wrong, person=4)
    assert int((after - before).argmax()) == 5 and after[4] < before[4]
