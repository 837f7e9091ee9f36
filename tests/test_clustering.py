import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from reference_jaccard import dense_jaccard
from vireid.clustering import cluster_quality, dbscan, jaccard_distance, knn, relabel_contiguous


def blobs(n=300, n_ids=25, d=32, noise=0.35, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_ids, d))
    pid = rng.integers(0, n_ids, n)
    x = centers[pid] + noise * np.sqrt(d) / 4 * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), pid


def test_knn_backends_agree():
    x, _ = blobs(200)
    d1, i1 = knn(x, 7, backend="faiss")
    d2, i2 = knn(x, 7, backend="torch", block=64)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2, atol=1e-4)
    assert (i1[:, 0] == np.arange(200)).all()
    with pytest.raises(ValueError, match="k=0"):
        knn(x, 0)


@pytest.mark.parametrize("k1,k2", [(30, 6), (20, 1), (12, 4)])
def test_sparse_jaccard_equals_dense_reference(k1, k2):
    x, _ = blobs(seed=k1)
    J = dense_jaccard(x, k1, k2)
    S = jaccard_distance(x, k1, k2, budget=5000)  # small budget: several row blocks
    assert S.shape == J.shape and S.dtype == np.float32
    dense = np.ones_like(J)
    coo = S.tocoo()
    dense[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(dense, J, atol=2e-6)
    assert np.all(np.abs(S.diagonal()) < 1e-6)


def test_modality_balanced_variant_equals_dense_reference():
    x, _ = blobs(240, seed=4)
    ir = np.random.default_rng(1).random(240) < 0.4
    J = dense_jaccard(x, 20, 8, is_infrared=ir)
    dense = np.ones_like(J)
    coo = jaccard_distance(x, 20, 8, modality=ir).tocoo()
    dense[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(dense, J, atol=2e-6)


@pytest.mark.parametrize("eps", [0.3, 0.6])
def test_dbscan_labels_equal_on_sparse_and_dense(eps):
    x, _ = blobs(400, 30, seed=7)
    J = dense_jaccard(x, 30, 6)
    ref = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(J)
    ours = dbscan(jaccard_distance(x, 30, 6), eps)
    pruned = dbscan(jaccard_distance(x, 30, 6, max_distance=eps), eps)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(pruned, ref)
    assert (ref >= 0).sum() > 100  # a non-trivial clustering


def test_degenerate_inputs_do_not_crash():
    x, _ = blobs(3)
    assert (dbscan(jaccard_distance(x, 30, 6), 0.6) == -1).all()  # too few for min_samples
    one = np.repeat(np.ones((1, 8), np.float32) / np.sqrt(8), 10, axis=0)
    one += 1e-4 * np.random.default_rng(0).normal(size=one.shape).astype(np.float32)
    labels = dbscan(jaccard_distance(one, 30, 6), 0.6)
    assert set(labels) == {0}
    assert dbscan(sp.csr_matrix((0, 0), dtype=np.float32), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="eps < 1"):
        dbscan(jaccard_distance(x, 3, 1), 1.0)


def test_relabel_and_quality():
    assert relabel_contiguous(np.array([5, -1, 5, 2, 9, 2])).tolist() == [0, -1, 0, 1, 2, 1]
    q = cluster_quality(np.array([0, 0, 1, 1, -1]), np.array([7, 7, 8, 8, 8]))
    assert q["ARI"] == 1.0 and q["purity"] == 1.0 and q["outlier_ratio"] == 0.2
    assert q["clusters"] == 2


def test_sparse_accumulation_path_equals_dense_path(monkeypatch):
    from vireid.clustering import kreciprocal

    x, _ = blobs(250, seed=9)
    a = jaccard_distance(x, 20, 6)
    monkeypatch.setattr(kreciprocal, "DENSE_ACCUMULATOR_BYTES", 0)  # force the CSR build
    b = jaccard_distance(x, 20, 6, budget=3000)
    # both paths sum the triplets in float64: the results are identical, not just close
    assert_same_csr(a, b)


def assert_same_csr(a, b):
    a, b = a.tocsr(), b.tocsr()
    assert a.has_sorted_indices and b.has_sorted_indices
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == b.dtype == np.float32


def encodings_of(x, k1, k2, is_infrared=None):
    from vireid.clustering import kreciprocal as kr
    from vireid.clustering.jaccard import _dot_distance, modality_balanced_expand

    _, nn = knn(x, k1, backend="faiss")
    V = kr.encodings(kr.expanded_sets(nn, k1), _dot_distance(x))
    if is_infrared is not None:
        return modality_balanced_expand(V, nn, k2, is_infrared)
    return kr.query_expand(V, nn, k2)


DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("balanced", [False, True])
@pytest.mark.parametrize("max_distance", [None, 0.6])
def test_torch_overlap_equals_numpy_path(device, balanced, max_distance):
    """From the same encodings, the device overlap (run here with torch on the CPU) gives
    the NumPy path's CSR bit for bit, over several row blocks, for both query expansions
    and with pruning; end to end (pair distances on the device too) the distances agree to
    float32 rounding and DBSCAN's labels are identical."""
    from vireid.clustering.jaccard import _host_overlap
    from vireid.clustering.overlap_torch import jaccard_from_encodings

    x, _ = blobs(300, seed=11)
    ir = np.random.default_rng(2).random(300) < 0.5 if balanced else None
    V = encodings_of(x, 20, 6, ir)
    host = _host_overlap(V, max_distance, budget=3000, workers=2)
    dev = jaccard_from_encodings(V, device, max_distance, budget=4000)
    assert_same_csr(host, dev)

    kw = dict(modality=ir, max_distance=max_distance, knn_backend="faiss")
    a = jaccard_distance(x, 20, 6, **kw)
    b = jaccard_distance(x, 20, 6, device=device, **kw)
    np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-6)
    np.testing.assert_array_equal(dbscan(a, 0.5), dbscan(b, 0.5))
    coo = dev.tocoo()
    assert (coo.row == coo.col).sum() == 300  # the diagonal is stored, also where it is 0.0
    assert np.all(dev.diagonal() < 1e-6)


def test_cluster_device_setting():
    from vireid.clustering.pseudo_labels import overlap_device

    assert overlap_device("cpu") is None
    assert overlap_device("auto") == ("cuda" if torch.cuda.is_available() else None)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            overlap_device("cuda")
