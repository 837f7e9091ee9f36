import numpy as np
import pytest
import scipy.sparse as sp
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
    np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-6)
    assert a.nnz == b.nnz
