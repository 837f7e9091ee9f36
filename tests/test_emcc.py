"""EMCC distance (ECUL): reductions to the modality-balanced / community Jaccard, the k3
filter, the camera-aware expansion weights, and a dense oracle of the whole."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from reference_emcc import dense_emcc
from vireid.clustering import emcc_distance, jaccard_distance
from vireid.clustering.emcc import (
    group_balanced_expand,
    group_codes,
    group_expansion_weights,
    k3_filter,
)


def people(n_ids=12, per=8, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, d))
    pid = np.repeat(np.arange(n_ids), per)
    x = centres[pid] + 0.6 * rng.normal(size=(len(pid), d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ir = rng.random(len(pid)) < 0.4
    cam = np.where(ir, rng.integers(3, 5, len(pid)), rng.integers(0, 3, len(pid)))
    return x.astype(np.float32), ir, cam


def same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (
        np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("k1,k2", [(20, 8), (10, 3), (6, 1)])
def test_emcc_with_extensions_off_equals_jaccard_bit_for_bit(balanced, k1, k2):
    x, ir, _ = people()
    mod = ir if balanced else None
    want = jaccard_distance(x, k1, k2, modality=mod, max_distance=0.9)
    got = emcc_distance(x, k1, k2, modality=mod, max_distance=0.9)
    assert same_csr(want, got)


def test_k3_filter_removes_exactly_the_out_of_range_entries():
    # 4 samples; row i's neighbours in order; k3 = 2 keeps {self, first neighbour}
    knn = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 1, 0], [3, 2, 0, 1]])
    dense = np.array(
        [
            [0.4, 0.3, 0.2, 0.1],  # keeps 0, 1
            [0.5, 0.5, 0.0, 0.0],  # keeps 1, 0: unchanged
            [0.1, 0.2, 0.3, 0.4],  # keeps 2, 3
            [0.2, 0.0, 0.0, 0.8],  # keeps 3 (2 has no entry): 0 dropped
        ],
        np.float32,
    )
    got = k3_filter(sp.csr_matrix(dense), knn, 2)
    want = np.array(
        [[0.4, 0.3, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.3, 0.4], [0, 0, 0, 0.8]], np.float64
    )
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(got.toarray(), want, rtol=1e-6)
    assert got.nnz == 7  # nothing outside the range is stored, not even as 0
    assert sp.csr_matrix(dense).nnz == 12  # 5 entries were out of range
    with pytest.raises(ValueError, match="columns"):
        k3_filter(sp.csr_matrix(dense), knn, 5)


def test_camera_aware_expansion_gives_each_group_present_equal_weight():
    # one row's k2 = 6 neighbours in groups a a b c c c: each group 1/3, shared by members
    w = group_expansion_weights(np.array([[0, 0, 1, 2, 2, 2], [5, 5, 5, 5, 5, 5]]))
    np.testing.assert_allclose(w[0], [1 / 6, 1 / 6, 1 / 3, 1 / 9, 1 / 9, 1 / 9], rtol=1e-7)
    np.testing.assert_allclose(w[1], np.full(6, 1 / 6), rtol=1e-7)
    # groups are (modality, camera) pairs: camera 1 of each modality is a different group
    codes = group_codes(4, np.array([0, 0, 1, 1], bool), np.array([1, 2, 1, 1]))
    assert len(set(codes[:2])) == 2 and codes[2] == codes[3] and codes[0] != codes[2]
    # on identity encodings the expanded row is the weight row itself
    knn = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 0, 1], [3, 2, 1, 0]])
    g = np.array([0, 0, 1, 2])
    out = group_balanced_expand(sp.identity(4, np.float32, format="csr"), knn, 4, g).toarray()
    np.testing.assert_allclose(out[0], [1 / 6, 1 / 6, 1 / 3, 1 / 3], rtol=1e-7)
    np.testing.assert_allclose(out.sum(1), 1, rtol=1e-6)


@pytest.mark.parametrize("k3", [None, 14, 30])
@pytest.mark.parametrize("use_camera", [True, False])
def test_emcc_equals_dense_reference(k3, use_camera):
    x, ir, cam = people(n_ids=8, per=8)
    groups = group_codes(len(x), ir, cam if use_camera else None)
    want = dense_emcc(x, 10, 4, k3, groups)
    got = emcc_distance(x, 10, 4, k3, modality=ir, camera=cam if use_camera else None)
    np.testing.assert_allclose(_fill(got), want, atol=2e-5)


def _fill(d: sp.csr_matrix) -> np.ndarray:
    """Dense view with absent entries = 1 (stored zeros stay 0)."""
    out = np.ones(d.shape)
    coo = d.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


def test_camera_awareness_and_k3_change_the_distance():
    x, ir, cam = people()
    base = emcc_distance(x, 10, 4, modality=ir)
    assert not same_csr(base, emcc_distance(x, 10, 4, modality=ir, camera=cam))
    filtered = emcc_distance(x, 10, 4, 20, modality=ir)
    assert filtered.nnz < base.nnz  # far pairs lose their overlap
    with pytest.raises(ValueError, match="k3"):
        emcc_distance(x, 10, 4, 5)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_emcc_device_path_equals_host_path(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA")
    x, ir, cam = people()
    kw = dict(modality=ir, camera=cam, max_distance=0.8, knn_backend="faiss")
    host = emcc_distance(x, 10, 4, 20, **kw)
    dev = emcc_distance(x, 10, 4, 20, device=device, **kw)
    # the pair distances may differ in the last float32 bit (summation order)
    np.testing.assert_allclose(_fill(host), _fill(dev), atol=1e-6)


def test_approximate_neighbours_reach_the_emcc_search(monkeypatch):
    """``cluster.knn: ivf|hnsw`` serves EMCC as it serves the Jaccard: the one search of
    width k3 gets the ``Ann`` (the exact path stays the default)."""
    from vireid.clustering import emcc as emcc_mod
    from vireid.clustering.knn_approx import Ann

    seen = []
    real = emcc_mod.knn_search

    def spy(x, k, backend="auto", ann=None, **kw):
        seen.append((k, ann))
        return real(x, k, backend=backend, ann=ann, **kw)

    monkeypatch.setattr(emcc_mod, "knn_search", spy)
    x, ir, cam = people()
    ann = Ann("hnsw", m=32, ef_construction=200, ef_search=200)
    approx = emcc_distance(x, 10, 4, 20, ir, cam, ann=ann)
    exact = emcc_distance(x, 10, 4, 20, ir, cam)
    assert seen == [(20, ann), (20, None)]
    # a search this wide on 96 points finds every neighbour: the same distances as exact
    assert abs(approx - exact).max() < 1e-6


def test_camera_search_encodings_equal_the_dense_reference():
    """The CA-Jaccard reading: reciprocal sets on intra- and inter-camera lists, and the
    expansion over the k2 nearest of each list."""
    from reference_emcc import dense_camera_encodings
    from vireid.clustering.camera_search import CameraSearch, camera_encodings
    from vireid.clustering.jaccard import _dot_distance

    x, _, cam = people(n_ids=8, per=6)
    got = camera_encodings(x, cam, 8, CameraSearch(3, 2, 3), _dot_distance(x)).toarray()
    want = dense_camera_encodings(x, cam, 8, 3, 2, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # every sample keeps other-camera neighbours in its set (the point of the reading)
    sets = camera_encodings(x, cam, 8, CameraSearch(3, 1, 0), _dot_distance(x)) > 0  # no expansion
    other = sets.multiply(sp.csr_matrix(cam[:, None] != cam[None, :])).sum(1)
    assert (np.asarray(other).ravel() > 0).mean() > 0.9


def test_camera_search_needs_cameras():
    from vireid.clustering.camera_search import CameraSearch

    x, ir, _ = people()
    with pytest.raises(ValueError, match="camera_search needs"):
        emcc_distance(x, 10, 3, modality=ir, camera_search=CameraSearch())


def gapped_people(seed=3):
    """``people`` with a modality gap: about 15 % of a global k3 list is of the other
    modality, so a global k3 range misses cross-modal neighbours."""
    x, ir, cam = people(n_ids=10, per=10, d=16, seed=seed)
    gap = np.zeros(x.shape[1], np.float32)
    gap[0] = 0.5
    x = x + np.where(ir[:, None], gap, -gap)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), ir, cam


def test_camera_k3_range_keeps_the_search_s_inter_camera_neighbours():
    """``camera_rule: search`` with ``k3_range: camera``: the k3 filter keeps exactly the
    entries of the search's encoding inside i's k3 nearest of its camera or of the other
    cameras (a dense loop). The global range drops most of the cross-modal entries the
    search's inter-camera sets brought in (about 2/3 here); the camera range keeps more."""
    from reference_emcc import dense_camera_encodings
    from vireid.clustering.camera_search import CameraSearch, camera_encodings, camera_range
    from vireid.clustering.jaccard import _dot_distance
    from vireid.clustering.knn import knn

    x, ir, cam = gapped_people()
    k1, k3 = 8, 10
    V = camera_encodings(x, cam, k1, CameraSearch(3, 2, 3), _dot_distance(x))
    got = k3_filter(V, camera_range(x, cam, k3), 2 * k3)
    dense = dense_camera_encodings(x, cam, k1, 3, 2, 3)
    d2 = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)
    keep = np.zeros_like(dense, bool)
    for i in range(len(x)):
        for same in (True, False):
            pool = np.flatnonzero((cam == cam[i]) == same)
            keep[i, pool[np.argsort(d2[i, pool], kind="stable")[:k3]]] = True
    want = np.where(keep, dense, 0)
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(got.toarray(), want, atol=1e-5)

    cross = ir[:, None] != ir[None, :]

    def kept(W):  # share of the search's cross-modal entries still in the encoding
        return (W.toarray()[cross] > 0).sum() / (V.toarray()[cross] > 0).sum()

    glob = k3_filter(V, knn(x, k3)[1], k3)
    assert kept(glob) < 0.5 and kept(got) > kept(glob) + 0.15, (kept(glob), kept(got))
    dist = {
        r: _fill(emcc_distance(x, k1, 1, k3, camera=cam, camera_search=CameraSearch(k3_range=r)))
        for r in ("global", "camera")
    }
    assert not np.array_equal(dist["global"], dist["camera"])  # the option reaches EMCC
    with pytest.raises(ValueError, match="k3_range"):
        CameraSearch(k3_range="inter")
