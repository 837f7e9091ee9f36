"""Batched k-means (MMM's multi-memories) against scikit-learn's KMeans, fit by fit."""

import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from test_mmm import two_view_people
from vireid.clustering.kmeans import batched_kmeans
from vireid.clustering.multi_memory import cluster_memories


def sklearn_fit(x, k, n_init=10, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KMeans(k, n_init=n_init, random_state=seed).fit(x)
    return km.cluster_centers_, km.inertia_


def assert_same_centres(ours, ref, atol):
    """Equal up to the order of the centres (k-means numbers them by its seeding)."""
    cost = ((ours[:, None] - ref[None]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    np.testing.assert_allclose(ours[r], ref[c], atol=atol)


def sub_blob_groups(n_groups=40, k=4, d=48, seed=0):
    """Groups of 8–40 samples around k well-separated centres: one clear k-means optimum."""
    rng = np.random.default_rng(seed)
    xs, groups, off = [], [], 0
    for _ in range(n_groups):
        s = int(rng.integers(2 * k, 40))
        lab = np.r_[np.arange(k), rng.integers(0, k, s - k)]
        xs.append(rng.normal(size=(k, d))[lab] * 3 + 0.3 * rng.normal(size=(s, d)))
        groups.append(np.arange(off, off + s))
        off += s
    return np.concatenate(xs).astype(np.float32), groups


@pytest.mark.parametrize("budget", [1 << 24, 4000])  # one chunk; many chunks
def test_same_centres_as_sklearn_where_the_optimum_is_clear(budget):
    x, groups = sub_blob_groups()
    centres, inertia = batched_kmeans(x, groups, 4, n_init=10, budget=budget)
    assert centres.shape == (len(groups), 4, x.shape[1]) and centres.dtype == np.float32
    for g, idx in enumerate(groups):
        ref, ref_inertia = sklearn_fit(x[idx], 4)
        assert_same_centres(centres[g], ref, atol=1e-4)
        assert inertia[g] == pytest.approx(ref_inertia, rel=1e-5)


def test_local_optima_as_good_as_sklearn_on_unstructured_groups():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2400, 32)).astype(np.float32)
    groups = np.array_split(rng.permutation(2400), 80)
    _, inertia = batched_kmeans(x, groups, 4, n_init=10)
    ref = np.array([sklearn_fit(x[g], 4)[1] for g in groups])
    ratio = inertia / ref
    assert ratio.mean() < 1.005 and ratio.max() < 1.05  # same quality, other random streams


def test_duplicates_exact_size_and_large_groups():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(3, 8)).astype(np.float32)
    x = np.concatenate(
        [
            np.repeat(base, 3, 0),  # 9 samples, 3 distinct: a centre is duplicated
            rng.normal(size=(4, 8)).astype(np.float32),  # exactly k samples
            np.repeat(base[:1], 6, 0),  # one distinct sample
            rng.normal(size=(60, 8)).astype(np.float32),  # above gram_max: scikit-learn
        ]
    )
    groups = [np.arange(9), np.arange(9, 13), np.arange(13, 19), np.arange(19, 79)]
    centres, inertia = batched_kmeans(x, groups, 4, n_init=5, gram_max=50)
    assert np.isfinite(centres).all()
    # 3 distinct samples, k = 4: every distinct sample is a centre, one of them twice
    dist = ((centres[0][:, None] - base[None]) ** 2).sum(-1)
    assert dist.min(1).max() < 1e-10 and set(dist.argmin(1)) == {0, 1, 2}
    assert inertia[0] == pytest.approx(0, abs=1e-6)
    for g in (1, 2):
        ref, ref_inertia = sklearn_fit(x[groups[g]], 4, n_init=5)
        assert_same_centres(centres[g], ref, atol=1e-5)
        assert inertia[g] == pytest.approx(ref_inertia, abs=1e-6)
    ref, ref_inertia = sklearn_fit(x[groups[3]], 4, n_init=5)  # the same fit, same seed
    np.testing.assert_allclose(centres[3], ref, atol=1e-6)
    with pytest.raises(ValueError, match="fewer than k=4"):
        batched_kmeans(x, [np.arange(3)], 4)


def test_cluster_memories_are_sklearn_memories_on_two_view_people():
    """The MMM tests' data (test_mmm.py): n = 2 memories per person have one optimum, the
    front and back appearance; with n = 4 each appearance splits in one of many ways of
    nearly equal inertia, so there the check is the inertia."""
    fv, lv, _ = two_view_people(12, per_view=9, d=32, seed=4)
    mem, count = cluster_memories(fv, lv, n=2, n_init=10)
    assert (count == 2).all()
    for p in range(12):
        assert_same_centres(mem[p], sklearn_fit(fv[lv == p], 2)[0], atol=1e-4)
    groups = [np.flatnonzero(lv == p) for p in range(12)]
    _, inertia = batched_kmeans(fv, groups, 4)
    ref = np.array([sklearn_fit(fv[g], 4)[1] for g in groups])
    assert (inertia / ref).max() < 1.03
