import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vireid.clustering import adca_associate, centroids, pgm_cost, progressive_match
from vireid.losses.memory import ClusterMemory, occurrence_rounds


def test_occurrence_rounds():
    y = torch.tensor([3, 1, 3, 3, 1, 0])
    assert occurrence_rounds(y).tolist() == [0, 0, 1, 2, 1, 0]


def test_mean_update_equals_sequential_hand_computation():
    torch.manual_seed(0)
    mem = ClusterMemory(4, 3, momentum=0.3)
    mem.reset(torch.randn(3, 4))
    start = mem.features.clone()
    x = torch.randn(5, 4)
    y = torch.tensor([2, 0, 2, 1, 2])
    mem.update(x, y)
    ref = start.clone()
    for xi, yi in zip(F.normalize(x, dim=1), y):  # the community's per-sample loop
        ref[yi] = 0.3 * ref[yi] + 0.7 * xi
        ref[yi] /= ref[yi].norm()
    torch.testing.assert_close(mem.features, ref)


def test_hard_update_uses_least_similar_sample():
    mem = ClusterMemory(2, 1, momentum=0.5, mode="hard")
    mem.reset(torch.tensor([[1.0, 0.0]]))
    x = torch.tensor([[1.0, 0.1], [0.0, 1.0], [1.0, 0.5]])
    mem.update(x, torch.tensor([0, 0, 0]))
    expected = F.normalize(0.5 * torch.tensor([1.0, 0.0]) + 0.5 * torch.tensor([0.0, 1.0]), dim=0)
    torch.testing.assert_close(mem.features[0], expected)


def test_weighted_hard_update_picks_by_the_unweighted_similarity():
    """A low confidence weight scales the pull, not the choice: the least similar sample
    is found on the normalised features, then moved in with its weight."""
    mem = ClusterMemory(2, 1, momentum=0.5, mode="hard")
    mem.reset(torch.tensor([[1.0, 0.0]]))
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # similarities 1 and 0.71
    mem.update(x, torch.tensor([0, 0]), torch.tensor([0.1, 0.8]))
    b = F.normalize(torch.tensor([1.0, 1.0]), dim=0)
    expected = F.normalize(0.5 * torch.tensor([1.0, 0.0]) + 0.5 * 0.8 * b, dim=0)
    torch.testing.assert_close(mem.features[0], expected)


def test_cluster_nce_matches_formula():
    mem = ClusterMemory(3, 2, temp=0.05)
    mem.reset(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    f = torch.tensor([[2.0, 1.0, 0.0]])
    logits = F.normalize(f, dim=1) @ mem.features.T / 0.05
    expected = -torch.log_softmax(logits, 1)[0, 1]
    torch.testing.assert_close(mem(f, torch.tensor([1])), expected)


def _clusters(n_a, n_b, seed=0):
    """Cluster centroids where a_i's true partner is b_{perm[i]} (plus extra clusters)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(max(n_a, n_b), 16))
    a = base[:n_a] + 0.05 * rng.normal(size=(n_a, 16))
    perm = rng.permutation(max(n_a, n_b))[:n_b]
    b = base[perm] + 0.05 * rng.normal(size=(n_b, 16))
    return a, b, perm


@pytest.mark.parametrize("n_a,n_b", [(6, 6), (9, 5), (5, 9)])
def test_progressive_match_finds_true_partners(n_a, n_b):
    a, b, perm = _clusters(n_a, n_b)
    a2b, b2a = progressive_match(pgm_cost(a, b))
    assert (a2b >= 0).all() and (b2a >= 0).all()  # every cluster of each side matched
    for j, src in enumerate(perm):
        if src < n_a:
            assert a2b[src] == j and b2a[j] == src  # the true one-to-one pairs
    if n_a > n_b:  # extra clusters attach many-to-one
        assert len(set(a2b.tolist())) == n_b


def test_adca_association_is_one_to_one_by_votes():
    fv = np.array([[1, 0], [1, 0], [0, 1], [0.7, 0.7]], np.float32)
    fi = np.array([[1, 0], [0, 1], [0, 1]], np.float32)
    lv = np.array([0, 0, 1, -1])
    li = np.array([5, 7, 7])
    pairs = adca_associate(fv, lv, fi, li, threshold=0.5)
    assert pairs == [(0, 5), (1, 7)]


def test_centroids():
    f = np.array([[1.0, 0], [3, 0], [0, 2], [9, 9]], np.float32)
    np.testing.assert_allclose(centroids(f, np.array([0, 0, 1, -1])), [[2, 0], [0, 2]])
