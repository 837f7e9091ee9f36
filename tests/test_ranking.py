import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_metrics import naive_eval
from vireid.evaluation import evaluate, evaluate_features
from vireid.evaluation.ranking import tie_permutation

RULES = ["sysu", "regdb", "llcm", "market"]


def problem(rng, nq, ng, n_ids, rule, ties=False):
    qp, gp = rng.integers(0, n_ids, nq), rng.integers(0, n_ids, ng)
    if rule in ("llcm", "market"):
        qc, gc = rng.integers(1, 4, nq), rng.integers(1, 4, ng)
    else:
        qc, gc = rng.choice([3, 6], nq), rng.choice([1, 2, 4, 5], ng)
    d = rng.normal(size=(nq, ng))
    return (np.round(d) if ties else d), qp, gp, qc, gc


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape", [(200, 90, 25), (50, 3, 2), (30, 1, 1), (17, 40, 40)])
def test_vectorised_equals_naive_loop(rule, ties, shape):
    rng = np.random.default_rng(hash((rule, ties, shape)) % 2**32)
    d, qp, gp, qc, gc = problem(rng, *shape, rule, ties)
    cmc, m, i, n = naive_eval(d, qp, gp, qc, gc, rule)
    # tiny blocks exercise the blocking logic; with ties, the community's own tie order
    # (np.argsort's default kind) is asked for: the default breaks ties by a permutation
    kind = "quicksort" if ties else None
    r = evaluate(d, qp, gp, qc, gc, rule, block_bytes=d.shape[1] * 80 * 7, sort_kind=kind)
    np.testing.assert_array_equal(r.cmc, cmc)
    assert r.cmc.dtype == np.float32
    assert r.mAP == pytest.approx(m, abs=1e-12) and r.mINP == pytest.approx(i, abs=1e-12)
    assert r.num_valid == n


def test_stable_sort_option_matches_naive_stable():
    rng = np.random.default_rng(1)
    d, qp, gp, qc, gc = problem(rng, 100, 60, 10, "sysu", ties=True)
    r = evaluate(d, qp, gp, qc, gc, "sysu", sort_kind="stable")
    cmc, m, _, _ = naive_eval(d, qp, gp, qc, gc, "sysu", sort_kind="stable")
    np.testing.assert_array_equal(r.cmc, cmc)
    assert r.mAP == pytest.approx(m, abs=1e-12)


def test_sysu_cam3_skips_cam2_whatever_the_identity():
    # one cam3 query whose only true match is in cam2 → invalid; a cam6 query keeps it
    d = np.array([[0.1, 0.2], [0.1, 0.2]])
    r = evaluate(d, [5, 5], [5, 7], [3, 6], [2, 1], "sysu")
    assert r.num_valid == 1 and r.mAP == 1.0
    assert np.isnan(r.ap[0])


def test_llcm_removes_same_id_same_camera():
    d = np.array([[0.1, 0.2, 0.3]])
    r = evaluate(d, [1], [1, 2, 1], [4], [4, 2, 5], "llcm")
    # the first gallery item is removed; the true match is then second of two
    assert r.mAP == pytest.approx(0.5) and r.cmc[0] == 0 and r.cmc[1] == 1


def test_unique_id_vs_standard_cmc():
    # ranked ids: 2, 2, 2, 1  → image rank of the match 4, unique-id rank 2
    d = np.array([[0.1, 0.2, 0.3, 0.4]])
    args = ([1], [2, 2, 2, 1], [6], [1, 1, 1, 1])
    assert evaluate(d, *args, "sysu").cmc[1] == 1.0
    assert evaluate(d, *args, "regdb").cmc[1] == 0.0
    assert evaluate(d, *args, "regdb").cmc[3] == 1.0


def test_errors():
    with pytest.raises(ValueError, match="no valid query"):
        evaluate(np.zeros((2, 2)), [1, 1], [2, 3], [6, 6], [1, 1], "sysu")
    with pytest.raises(ValueError, match="q_pids has 1 entries"):
        evaluate(np.zeros((2, 2)), [1], [2, 3], [6, 6], [1, 1], "sysu")
    with pytest.raises(ValueError, match="protocol rule"):
        evaluate(np.zeros((1, 1)), [1], [1], [6], [1], "market1501")


def test_features_path_equals_distance_path():
    rng = np.random.default_rng(3)
    q = rng.normal(size=(80, 16))
    g = rng.normal(size=(50, 16))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    qp, gp = rng.integers(0, 8, 80), rng.integers(0, 8, 50)
    qc, gc = rng.choice([3, 6], 80), rng.choice([1, 2, 4, 5], 50)
    a = evaluate(-(q @ g.T), qp, gp, qc, gc, "sysu")
    b = evaluate_features(q, g, qp, gp, qc, gc, "sysu", block_bytes=50 * 80 * 3)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert a.mAP == b.mAP and a.mINP == b.mINP


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(1, 30),
    st.integers(1, 6),
    st.integers(0, 2**31),
    st.sampled_from(RULES),
)
def test_properties(nq, ng, n_ids, seed, rule):
    rng = np.random.default_rng(seed)
    d, qp, gp, qc, gc = problem(rng, nq, ng, n_ids, rule)
    try:
        r = evaluate(d, qp, gp, qc, gc, rule)
    except ValueError as e:
        assert "no valid query" in str(e)
        return
    assert 0 < r.mAP <= 1 and 0 < r.mINP <= 1
    assert np.all(np.diff(r.cmc) >= 0) and r.cmc[0] >= 0 and r.cmc[-1] <= 1
    perm = rng.permutation(ng)  # gallery order does not matter (tie-free distances)
    r2 = evaluate(d[:, perm], qp, gp[perm], qc, gc[perm], rule)
    np.testing.assert_array_equal(r.cmc, r2.cmc)
    assert r.mAP == pytest.approx(r2.mAP)


def test_perfect_ranking_scores_one():
    ids = np.repeat(np.arange(10), 3)
    d = (ids[:, None] != ids[None, :]).astype(float) + np.random.default_rng(0).random((30, 30))
    d[ids[:, None] == ids[None, :]] *= 0.01
    r = evaluate(d, ids, ids, np.full(30, 6), np.full(30, 1), "regdb")
    assert r.mAP == 1.0 and r.mINP == 1.0 and r.cmc[0] == 1.0


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("shape", [(200, 90, 25), (50, 3, 2), (17, 40, 40)])
def test_default_breaks_ties_by_the_seeded_permutation(rule, shape):
    """Default order = the oracle's stable order on the gallery permuted by
    ``tie_permutation``: ties are resolved independently of the labels."""
    rng = np.random.default_rng(hash((rule, shape, "perm")) % 2**32)
    d, qp, gp, qc, gc = problem(rng, *shape, rule, ties=True)
    p = tie_permutation(d.shape[1])
    cmc, m, i, n = naive_eval(d[:, p], qp, gp[p], qc, gc[p], rule, sort_kind="stable")
    r = evaluate(d, qp, gp, qc, gc, rule, block_bytes=d.shape[1] * 80 * 7)
    np.testing.assert_array_equal(r.cmc, cmc)
    assert r.mAP == pytest.approx(m, abs=1e-12) and r.mINP == pytest.approx(i, abs=1e-12)
    assert r.num_valid == n


def _sorted_gallery_problem(n_ids=60, per_id=4, n_query=120, seed=0):
    """A gallery listed sorted by identity, as every protocol lists it."""
    rng = np.random.default_rng(seed)
    gp = np.repeat(np.arange(n_ids), per_id)
    qp = rng.integers(0, n_ids, n_query)
    return qp, gp, np.full(n_query, 2), np.ones(len(gp), int)


def test_constant_features_score_at_chance():
    """A model whose features are all equal knows nothing: it must score what a random
    ranking scores. Chance = the mean over 200 random rankings (iid uniform distances);
    band: ±3 standard deviations of the mAP over 50 seeded tie permutations (seed-to-seed
    spread of one permutation shared by all queries). The community's tie order scores
    ~2× chance here (the identity-sorted list keeps each query's matches together)."""
    qp, gp, qc, gc = _sorted_gallery_problem()
    rng = np.random.default_rng(1)
    chance = [evaluate(rng.random((len(qp), len(gp))), qp, gp, qc, gc, "regdb") for _ in range(200)]
    chance_map = np.mean([r.mAP for r in chance])
    chance_r1 = np.mean([r.cmc[0] for r in chance])
    const = np.ones((len(qp), 8)) / np.sqrt(8)
    g = np.ones((len(gp), 8)) / np.sqrt(8)
    r = evaluate_features(const, g, qp, gp, qc, gc, "regdb")
    spread = np.std(
        [
            evaluate(np.zeros((len(qp), len(gp)))[:, p], qp, gp[p], qc, gc[p], "regdb").mAP
            for p in (np.random.default_rng(s).permutation(len(gp)) for s in range(50))
        ]
    )
    assert abs(r.mAP - chance_map) < 3 * spread, (r.mAP, chance_map, spread)
    assert r.cmc[0] < 3 * chance_r1 + 0.05
    leaky = evaluate_features(const, g, qp, gp, qc, gc, "regdb", sort_kind="stable")
    assert leaky.mAP > 1.5 * chance_map  # what the list order leaked


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_and_distances_are_refused(bad):
    q, g = np.ones((3, 4)), np.ones((5, 4))
    q[1, 2] = bad
    args = ([1, 2, 3], [1, 2, 3, 1, 2], [6] * 3, [1] * 5, "sysu")
    with pytest.raises(ValueError, match="query features: 1 row.*first: row 1"):
        evaluate_features(q, g, *args)
    with pytest.raises(ValueError, match="gallery features: 1 row"):
        evaluate_features(g[:3], np.vstack([g[:4], q[1:2]]), *args)
    d = np.zeros((3, 5))
    d[2, 4] = bad
    with pytest.raises(ValueError, match="non-finite values .* query row 2"):
        evaluate(d, *args)


def test_zero_dimensional_features_are_refused():
    with pytest.raises(ValueError, match="D >= 1"):
        evaluate_features(np.zeros((2, 0)), np.zeros((3, 0)), [1, 2], [1, 2, 2], [6, 6], [1] * 3)
