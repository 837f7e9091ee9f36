import numpy as np
import pytest

from vireid.evaluation.rerank import re_ranking, rerank_features


def dense_reference(q_g, q_q, g_g, k1=20, k2=6, lam=0.3):
    """Dense k-reciprocal re-ranking written from the published algorithm (float32)."""
    nq = q_g.shape[0]
    D = np.concatenate([np.concatenate([q_q, q_g], 1), np.concatenate([q_g.T, g_g], 1)], 0)
    D = np.power(D, 2).astype(np.float32)
    D = np.transpose(1.0 * D / np.max(D, axis=0))
    N = D.shape[0]
    V = np.zeros_like(D, dtype=np.float32)
    rank = np.argsort(D).astype(np.int32)

    def krecip(i, k):
        fwd = rank[i, : k + 1]
        back = rank[fwd, : k + 1]
        return fwd[np.where(back == i)[0]]

    for i in range(N):
        R = krecip(i, k1)
        E = R
        for c in R:
            Rc = krecip(c, int(np.around(k1 / 2.0)))
            if len(np.intersect1d(Rc, R)) > 2.0 / 3 * len(Rc):
                E = np.append(E, Rc)
        E = np.unique(E)
        w = np.exp(-D[i, E])
        V[i, E] = w / np.sum(w)
    D = D[:nq]
    if k2 != 1:
        V = np.stack([V[rank[i, :k2]].mean(0) for i in range(N)])
    J = np.zeros((nq, N), np.float32)
    for i in range(nq):
        s = np.minimum(V[i][None, :], V).sum(1)
        J[i] = 1 - s / (2 - s)
    return ((1 - lam) * J + lam * D)[:, nq:]


def _feats(seed, n, d=8):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, d))
    x = centers[rng.integers(0, 6, n)] + 0.5 * rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _dists(q, g):
    e = lambda a, b: np.sqrt(np.maximum(((a[:, None] - b[None]) ** 2).sum(-1), 0))
    return e(q, g), e(q, q), e(g, g)


@pytest.mark.parametrize("k1,k2", [(20, 6), (7, 3), (5, 1)])
def test_sparse_equals_dense_reference(k1, k2):
    q, g = _feats(0, 25), _feats(1, 60)
    qg, qq, gg = _dists(q, g)
    ours = re_ranking(qg, qq, gg, k1, k2, 0.3)
    ref = dense_reference(qg, qq, gg, k1, k2, 0.3)
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_features_version_equals_matrix_version():
    q, g = _feats(2, 20).astype(np.float32), _feats(3, 50).astype(np.float32)
    qg, qq, gg = _dists(q.astype(np.float64), g.astype(np.float64))
    np.testing.assert_allclose(
        rerank_features(q, g, 10, 4), re_ranking(qg, qq, gg, 10, 4), atol=1e-4
    )


def test_rerank_improves_a_clustered_problem():
    from vireid.evaluation import evaluate

    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(12), 6)
    centers = rng.normal(size=(12, 16))
    x = centers[ids] + 0.9 * rng.normal(size=(72, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q, g, qp, gp = x[::3], np.delete(x, np.s_[::3], 0), ids[::3], np.delete(ids, np.s_[::3])
    base = evaluate(-(q @ g.T), qp, gp, np.ones(len(qp)), np.zeros(len(gp)), "regdb")
    rr = evaluate(rerank_features(q, g, 8, 3), qp, gp, np.ones(len(qp)), np.zeros(len(gp)), "regdb")
    assert rr.mAP > base.mAP
