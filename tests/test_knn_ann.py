"""Approximate neighbours (cluster.knn = ivf | hnsw) against the exact search."""

import importlib

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from test_clustering import blobs
from vireid.clustering import dbscan, jaccard_distance, knn
from vireid.clustering.knn_approx import Ann, _complete, ann_route, pca_project, rerank
from vireid.clustering.pseudo_labels import build_ann, cluster_labels
from vireid.config.schema import ClusterCfg


def brute_d2(x, idx):
    return ((x[:, None, :] - x[idx]) ** 2).sum(-1)


def recall(idx, exact):
    return np.mean([len(np.intersect1d(a, b)) / len(b) for a, b in zip(idx, exact)])


@pytest.mark.parametrize(
    "ann",
    [
        Ann("ivf", nprobe=6),
        Ann("hnsw", m=16, ef_search=48),
        Ann("hnsw", m=16, ef_search=48, metric="l2"),
        Ann("hnsw", pca_dim=24, rerank=2),  # search on 24 components, re-ranked on 64
        Ann("ivf", nprobe=6, pca_dim=24, rerank=3),
    ],
)
def test_approximate_search_finds_the_neighbours_with_exact_distances(ann):
    x, _ = blobs(1500, 60, d=64, noise=0.5, seed=3)  # recall < 1: really approximate
    _, i_ex = knn(x, 10)
    d2, idx = knn(x, 10, ann=ann)
    assert idx.shape == (1500, 10) and idx.dtype == np.int64 and d2.dtype == np.float32
    assert (idx[:, 0] == np.arange(1500)).all()
    assert (idx >= 0).all() and all(len(set(r)) == 10 for r in idx)
    assert (np.diff(d2, axis=1) >= 0).all()  # ascending
    np.testing.assert_allclose(d2, brute_d2(x, idx), atol=1e-4)  # exact for the ones found
    assert recall(idx, i_ex) > 0.9


def test_hnsw_on_the_full_features_searches_by_l2_when_norms_differ():
    # clustering features are flip-averaged and not re-normalised: norms below 1 and
    # unequal, so inner-product order is not distance order; without a projection there
    # is no re-ranking margin (k candidates), so the graph's metric must be L2
    x, _ = blobs(1500, 60, d=64, noise=0.5, seed=3)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    x *= np.random.default_rng(0).uniform(0.6, 1.0, size=(len(x), 1)).astype(np.float32)
    _, i_ex = knn(x, 10)
    got = {m: recall(knn(x, 10, ann=Ann("hnsw", ef_search=64, metric=m))[1], i_ex)
           for m in ("auto", "l2", "ip")}  # fmt: skip
    assert got["auto"] == got["l2"] > 0.95
    assert got["ip"] < got["auto"] - 0.1


def test_ivf_probing_every_cell_is_the_exact_search():
    x, _ = blobs(800, 40, d=24, seed=5)
    d_ex, i_ex = knn(x, 12)
    d2, idx = knn(x, 12, ann=Ann("ivf", nlist=16, nprobe=16))
    np.testing.assert_array_equal(idx, i_ex)
    np.testing.assert_allclose(d2, d_ex, atol=1e-5)
    # and the Jaccard distances built on it are the exact ones
    a = jaccard_distance(x, 20, 6, max_distance=0.6)
    b = jaccard_distance(x, 20, 6, max_distance=0.6, ann=Ann("ivf", nlist=16, nprobe=16))
    np.testing.assert_array_equal(a.toarray(), b.toarray())


def test_short_rows_are_searched_exactly_and_a_missed_self_goes_first():
    x, _ = blobs(50, 5, d=8)
    d_ex, i_ex = knn(x, 4)
    d2, idx = d_ex.copy(), i_ex.copy()
    idx[3, 2:] = -1  # a row that came back short
    idx[7] = np.r_[i_ex[7, 1:], i_ex[7, 1]]  # self missing (and a duplicate at the end)
    d2[7] = np.r_[d_ex[7, 1:], d_ex[7, 1]]
    d2, idx = _complete(x, d2, idx)
    np.testing.assert_array_equal(idx[3], i_ex[3])
    np.testing.assert_array_equal(idx[7], i_ex[7])
    np.testing.assert_allclose(d2[7], d_ex[7], atol=1e-6)


def test_ivf_with_tiny_cells_still_returns_k_neighbours():
    x, _ = blobs(200, 10, d=16, seed=2)
    _, idx = knn(x, 30, ann=Ann("ivf", nlist=100, nprobe=1))  # ~2 points per cell
    _, i_ex = knn(x, 30)
    assert (idx >= 0).all()
    np.testing.assert_array_equal(np.sort(idx, 1), np.sort(i_ex, 1))  # rows searched exactly


def test_rerank_keeps_the_exact_nearest_candidates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)).astype(np.float32)
    cand = np.stack([rng.choice(300, 40, replace=False) for _ in range(300)])
    d2, idx = rerank(x, cand, 7)
    brute = brute_d2(x, cand)
    order = np.argsort(brute, 1, kind="stable")[:, :7]
    np.testing.assert_array_equal(idx, np.take_along_axis(cand, order, 1))
    np.testing.assert_allclose(d2, np.take_along_axis(brute, order, 1), atol=1e-4)


def test_pca_projection_keeps_the_principal_subspace():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(32, 4)))[0]  # data in a 4-d subspace of 32
    x = (rng.normal(size=(500, 4)) * [5, 4, 3, 2] @ basis.T).astype(np.float32)
    y = pca_project(x, 4, samples=200)
    assert y.shape == (500, 4)
    # distances survive: the projection is a rotation of the subspace the data lives in
    np.testing.assert_allclose(brute_d2(y, np.arange(500)[None, :10].repeat(500, 0)),
                               brute_d2(x, np.arange(500)[None, :10].repeat(500, 0)),
                               rtol=1e-3, atol=1e-3)  # fmt: skip


def test_routes_and_settings():
    assert ann_route("ivf", on_cuda=False, faiss_gpus=0) == "ivf"
    assert ann_route("hnsw", on_cuda=False, faiss_gpus=0) == "hnsw"
    assert ann_route("ivf", on_cuda=False, faiss_gpus=1) == "ivf_gpu"
    assert ann_route("ivf", on_cuda=True, faiss_gpus=1) == "ivf_gpu"
    assert ann_route("ivf", on_cuda=True, faiss_gpus=0) == "exact"  # the torch path
    assert ann_route("hnsw", on_cuda=True, faiss_gpus=1) == "exact"
    with pytest.raises(ValueError, match="expected ivf, hnsw or bf16"):
        Ann("pq")
    with pytest.raises(ValueError, match="nprobe=0"):
        Ann("ivf", nprobe=0)
    with pytest.raises(ValueError, match="pca_dim=-1"):
        Ann("hnsw", pca_dim=-1)
    with pytest.raises(ValueError, match="expected auto, ip or l2"):
        Ann("hnsw", metric="cos")
    assert build_ann(ClusterCfg()) is None  # exact stays the default
    a = build_ann(ClusterCfg(knn="ivf", ivf_nprobe=12, ivf_nlist=64))
    assert (a.method, a.nprobe, a.nlist) == ("ivf", 12, 64)
    h = build_ann(ClusterCfg(knn="hnsw", hnsw_m=12, hnsw_ef_search=80, knn_pca_dim=64))
    assert (h.m, h.ef_search, h.pca_dim, h.rerank) == (12, 80, 64, 2)
    assert h.metric == "auto" and build_ann(ClusterCfg(knn="hnsw", hnsw_metric="ip")).metric == "ip"


def same_neighbours(d_a, i_a, d_b, i_b, atol=2e-5):
    """Equal lists up to the order of distances equal within float32 rounding (the
    re-ranking's bmm and the exact tile's product sum in different orders)."""
    np.testing.assert_allclose(d_a, d_b, atol=atol)
    assert all(set(a) == set(b) for a, b in zip(i_a, i_b, strict=True))


def bf16_search(x, k, block=1024, rerank=2):
    from vireid.clustering.knn import _torch_knn, bf16_candidates

    t = torch.from_numpy(x)
    return _torch_knn(t, k, block, candidates=bf16_candidates(k, len(x), rerank))


def test_bf16_candidates_reranked_give_the_exact_lists_and_distances():
    x, _ = blobs(1200, 40, d=48, noise=0.5, seed=4)
    d_ex, i_ex = knn(x, 15, backend="torch")
    d2, idx = bf16_search(x, 15)
    same_neighbours(d2, idx, d_ex, i_ex)
    # float32 distances of the found neighbours: bf16 products alone are off by ~4e-3
    np.testing.assert_allclose(d2, brute_d2(x, idx), atol=2e-5)
    assert build_ann(ClusterCfg(knn="bf16", knn_rerank=3)).rerank == 3


def test_bf16_reranking_in_steps_keeps_each_row_its_own_candidates(monkeypatch):
    knn_mod = importlib.import_module("vireid.clustering.knn")
    x, _ = blobs(500, 20, d=32, seed=6)
    d_ex, i_ex = knn(x, 10, backend="torch")
    # 3 rows per re-ranking step, 64-row blocks not dividing N: offsets s + r inside blocks
    monkeypatch.setattr(knn_mod, "RERANK_FLOATS", 3 * 20 * 32)
    d2, idx = bf16_search(x, 10, block=64)
    same_neighbours(d2, idx, d_ex, i_ex)


def test_bf16_off_cuda_is_the_exact_search():
    x, _ = blobs(400, 20, d=16, seed=7)
    a = knn(x, 10, ann=Ann("bf16"))
    b = knn(x, 10)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


def test_bf16_ties_keep_the_smaller_index_first():
    x = np.repeat(np.eye(6, 8, dtype=np.float32), 3, axis=0)  # triplets of equal rows
    _, idx = bf16_search(x, 3)
    np.testing.assert_array_equal(np.sort(idx, 1), idx)  # equal distances: index order
    np.testing.assert_array_equal(idx[4], [3, 4, 5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_bf16_candidates_match_the_exact_torch_search():
    x, _ = blobs(3000, 100, d=256, noise=0.5, seed=1)
    d_ex, i_ex = knn(x, 30, device="cuda")
    d2, idx = knn(x, 30, device="cuda", ann=Ann("bf16"))
    same_neighbours(d2, idx, d_ex, i_ex, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_without_faiss_gpu_keeps_the_exact_torch_search(monkeypatch):
    # the module (vireid.clustering.knn is also the name of the function it exports)
    knn_mod = importlib.import_module("vireid.clustering.knn")
    monkeypatch.setattr(knn_mod, "faiss_gpus", lambda: 0)
    x, _ = blobs(300)
    a = knn_mod.knn(x, 8, device="cuda", ann=Ann("ivf"))
    b = knn_mod.knn(x, 8, device="cuda")
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("method", ["ivf", "hnsw", "hnsw_pca"])
def test_approximate_pseudo_labels_agree_with_exact(method):
    x, pid = blobs(1500, 60, d=64, noise=0.5, seed=3)  # k1 recall 0.92-0.99 here
    exact = cluster_labels(x, 30, 6, 0.6, 4, device="cpu")
    ann = Ann("hnsw", pca_dim=24) if method == "hnsw_pca" else Ann(method)
    approx = cluster_labels(x, 30, 6, 0.6, 4, device="cpu", ann=ann)
    assert adjusted_rand_score(exact, approx) > 0.99
    assert adjusted_rand_score(pid, exact) > 0.9  # a real clustering, not all outliers
    labels = dbscan(jaccard_distance(x, 30, 6, max_distance=0.6, ann=ann), 0.6)
    assert (labels < 0).sum() == (exact < 0).sum()
