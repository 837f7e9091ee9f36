import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from conftest import run_overrides, straight_and_resumed
from vireid.cli import app
from vireid.clustering import centroids, pgm_cost, progressive_match
from vireid.clustering.multi_memory import (
    cluster_memories,
    greedy_match,
    match_clusters,
    merge_matched,
    multi_memory_cost,
    transfer_labels,
)
from vireid.clustering.quality import cross_modality_ari
from vireid.losses.confidence import gmm_confidence
from vireid.losses.memory import ClusterMemory
from vireid.losses.mmd import inter_modality_mmd, mmd2
from vireid.methods.mmm import weighted_centres

INSTANT = Path(__file__).parents[1] / "configs" / "tests" / "instant_mmm.yaml"


def two_view_people(n_people, per_view=6, d=24, seed=0, shift=0.0):
    """Each person has a 'front' and a 'back' appearance far apart; the two modalities see
    the same appearances (plus a modality shift and noise)."""
    rng = np.random.default_rng(seed)
    views = rng.normal(size=(n_people, 2, d)) * 3
    feats, labels = [], []
    for p in range(n_people):
        for v in (0, 1):
            feats.append(views[p, v] + shift + 0.2 * rng.normal(size=(per_view, d)))
            labels += [p] * per_view
    return np.concatenate(feats).astype(np.float32), np.array(labels), views


@pytest.mark.parametrize("n_v,n_r", [(6, 6), (8, 5), (5, 8)])
def test_multi_memory_matching_recovers_identities(n_v, n_r):
    common = min(n_v, n_r)
    fv, lv, _ = two_view_people(max(n_v, n_r), seed=1)
    fr, lr, _ = two_view_people(max(n_v, n_r), seed=1, shift=0.3)
    # visible clusters: people 0..n_v-1; infrared clusters: people in reversed order
    keep_v = lv < n_v
    fv, lv = fv[keep_v], lv[keep_v]
    keep_r = lr < n_r
    fr, lr = fr[keep_r], (n_r - 1 - lr[keep_r])
    mv, cv = cluster_memories(fv, lv, n=2, n_init=3)
    mr, cr = cluster_memories(fr, lr, n=2, n_init=3)
    for direction in ("visible", "infrared", "symmetric"):
        v2r = match_clusters(multi_memory_cost(mv, cv, mr, cr, direction), "hungarian")
        assert (v2r >= 0).all()
        for p in range(common):
            assert v2r[p] == n_r - 1 - p, (direction, p)


def view_mix_people(seed, n=8, d=16, differ=True):
    """Each person has two appearances (person-specific, far apart). With ``differ`` the
    visible set sees mostly the first (7:1) and the infrared set mostly the second (1:7),
    so the cluster centroids move apart by identity-specific amounts; the control sees
    both views 4:4 in both modalities."""
    rng = np.random.default_rng(seed)
    base, off = rng.normal(size=(n, d)), 1.5 * rng.normal(size=(n, d))
    mixes = ((7, 1), (1, 7)) if differ else ((4, 4), (4, 4))
    out = []
    for k1, k2 in mixes:
        f = [
            np.r_[
                base[p] + off[p] + 0.05 * rng.normal(size=(k1, d)),
                base[p] - off[p] + 0.05 * rng.normal(size=(k2, d)),
            ]
            for p in range(n)
        ]
        out += [np.concatenate(f).astype(np.float32), np.repeat(np.arange(n), k1 + k2)]
    return out


@pytest.mark.parametrize("seed", [0, 2])
def test_multi_memory_beats_single_memory_when_view_mixes_differ(seed):
    """Single-memory (centroid) matching, PGM's cost or the same Euclidean cost with n = 1,
    confuses identities whose two modalities show different view mixtures; n = 2 memories
    (the paper's default visible-sum cost) match every one. The control with equal mixes
    shows the data, not the code path, makes the difference."""
    n = 8
    for differ in (True, False):
        fv, lv, fr, lr = view_mix_people(seed, n, differ=differ)
        mv, cv = cluster_memories(fv, lv, n=2, n_init=3)
        mr, cr = cluster_memories(fr, lr, n=2, n_init=3)
        multi = match_clusters(multi_memory_cost(mv, cv, mr, cr), "hungarian")
        single = progressive_match(pgm_cost(centroids(fv, lv), centroids(fr, lr)))[0]
        m1v, c1v = cluster_memories(fv, lv, n=1)
        m1r, c1r = cluster_memories(fr, lr, n=1)
        n1 = match_clusters(multi_memory_cost(m1v, c1v, m1r, c1r), "hungarian")
        right = np.arange(n)
        assert (multi == right).all()
        if differ:
            assert (single == right).mean() <= 0.25 and (n1 == right).mean() <= 0.25
        else:
            assert (single == right).all() and (n1 == right).all()


@pytest.mark.parametrize("seed", [0, 2])
def test_mmm_matches_with_its_multiple_memories(seed):
    """MMM's own matching step (``on_clusters``, n = 2 memories) pairs every identity of
    the view-mix data, where the single-memory matching it logs for comparison fails."""
    from torch import nn

    from vireid.config.schema import MMMMethodCfg
    from vireid.methods.mmm import MMM

    net = nn.Module()
    net.w, net.bottleneck = nn.Parameter(torch.ones(())), nn.BatchNorm1d(16)
    cfg = MMMMethodCfg(use_joint=False, num_memories=2, kmeans_n_init=3, match_start_epoch=1)
    m = MMM(net, cfg)
    fv, lv, fr, lr = view_mix_people(seed, 8)
    m.on_clusters(0, {0: fv, 1: fr}, {0: lv, 1: lr})
    assert (m.v2r == np.arange(8)).all()
    assert (m.v2r_single == np.arange(8)).mean() <= 0.25


def test_cost_directions_on_asymmetric_memories():
    """Visible cluster with memories {a, b}, infrared cluster with {a}: the paper's sum over
    visible memories is ‖b − a‖, the code's sum over infrared memories 0 (mmlm.py)."""
    a, b = np.zeros(3, np.float32), np.array([3.0, 4.0, 0.0], np.float32)
    mv = np.stack([a, b])[None]
    mr = np.stack([a, np.full(3, np.nan, np.float32)])[None]
    cv, cr = np.array([2]), np.array([1])
    # the lone infrared memory's terms are averaged and scaled by n = 2
    assert multi_memory_cost(mv, cv, mr, cr, "visible")[0, 0] == pytest.approx(5.0)
    assert multi_memory_cost(mv, cv, mr, cr, "infrared")[0, 0] == pytest.approx(0.0)
    assert multi_memory_cost(mv, cv, mr, cr, "symmetric")[0, 0] == pytest.approx(2.5)


def test_kmeans_fallback_for_small_clusters():
    f = np.arange(12, dtype=np.float32).reshape(6, 2)
    labels = np.array([0, 0, 1, 1, 1, 1])
    mem, cnt = cluster_memories(f, labels, n=4, n_init=1)
    assert cnt.tolist() == [2, 4]
    np.testing.assert_array_equal(mem[0, :2], f[:2])  # each sample is its own memory
    assert np.isnan(mem[0, 2:]).all()
    cost = multi_memory_cost(mem, cnt, mem, cnt)
    assert np.isfinite(cost).all() and cost[0, 0] == pytest.approx(0, abs=1e-5)


def test_small_cluster_terms_are_averaged_and_scaled_by_n():
    """A 2-sample cluster (n = 4) has its 2 samples as memories; its nearest-memory sum is
    scaled by n / 2, so it stays comparable with a full cluster's 4 terms."""
    small = np.array([[0.0, 0.0], [2.0, 0.0]], np.float32)
    full = np.array([[0.0, 1.0], [2.0, 3.0], [5.0, 0.0], [9.0, 9.0]], np.float32)
    mem, cnt = cluster_memories(np.r_[small, full], np.array([0, 0, 1, 1, 1, 1]), n=4)
    cost = multi_memory_cost(mem[:1], cnt[:1], mem[1:], cnt[1:], "visible")[0, 0]
    assert cost == pytest.approx((4 / 2) * (1.0 + np.sqrt(5)))  # nearest of each: (0, 1)
    back = multi_memory_cost(mem[1:], cnt[1:], mem[:1], cnt[:1], "visible")[0, 0]
    assert back == pytest.approx(1.0 + 3.0 + 3.0 + np.hypot(7, 9))


def test_confidence_weighted_memory_update():
    """M[y] ← normalise(m·M[y] + (1 − m)·w·x̂): a low-confidence sample pulls less."""
    mem = ClusterMemory(2, 1, momentum=0.1)
    mem.reset(torch.tensor([[1.0, 0.0]]))
    mem.update(torch.tensor([[0.0, 3.0]]), torch.tensor([0]), torch.tensor([0.5]))
    want = torch.nn.functional.normalize(torch.tensor([0.1, 0.45]), dim=0)
    torch.testing.assert_close(mem.features[0], want)


def test_greedy_matching_and_label_transfer():
    cost = np.array([[0.1, 0.9], [0.2, 0.8], [0.9, 0.1]])
    assert greedy_match(cost).tolist() == [0, 0, 1]
    uv, ur = transfer_labels(np.array([0, 1, 2, -1]), np.array([0, 1, 1]), np.array([1, 0, -1]))
    assert uv.tolist() == [1, 0, 4, -1] and ur.tolist() == [0, 1, 1]  # unmatched → fresh id


def test_merge_matched_joins_the_visible_clusters_of_one_infrared_cluster():
    """Y^v := QY^r as visible identities: clusters 0 and 2 both matched to infrared 1 are
    one identity; an unmatched cluster is its own identity without a partner; identities
    and infrared clusters are then one-to-one."""
    labels_v = np.array([0, 0, 1, 2, 2, 3, -1])
    ident, partner = merge_matched(labels_v, np.array([1, 0, 1, -1]), num_infrared=3)
    assert ident.tolist() == [1, 1, 0, 1, 1, 2, -1]
    assert partner.tolist() == [0, 1, -1]
    # after the progressive Hungarian: 5 visible clusters onto 3 infrared ones
    cost = np.array([[0, 5, 5], [5, 0, 5], [5, 5, 0], [1, 5, 5], [5, 5, 1]], float)
    v2r = match_clusters(cost)
    assert v2r.tolist() == [0, 1, 2, 0, 2]
    ident, partner = merge_matched(np.arange(5), v2r, 3)
    assert ident.tolist() == [0, 1, 2, 0, 2] and partner.tolist() == [0, 1, 2]


@pytest.mark.parametrize("method", ["greedy", "hungarian"])
def test_compat_skip_last_restores_both_halves_of_the_off_by_one(method):
    """mmlm.py's loops stop at len(set) − 1: the last infrared cluster is never a
    candidate, and the last visible cluster keeps its own label — which is infrared
    cluster C_v − 1's label (the collision)."""
    cost = np.array(
        [
            [0.5, 0.9, 0.9, 0.1],  # its cheapest is the last infrared cluster
            [0.9, 0.2, 0.9, 0.9],
            [0.9, 0.9, 0.1, 0.9],  # the last visible cluster
        ]
    )
    v2r = match_clusters(cost, method, skip_last=True)
    assert 3 not in v2r[:-1]  # the last infrared cluster is out
    assert v2r[-1] == 2  # visible id 2 kept = infrared id 2
    assert match_clusters(cost, method)[0] == 3  # without the flag it takes it
    uv, _ = transfer_labels(np.array([0, 1, 2]), np.arange(4), v2r)
    assert uv[2] == 2  # collides with infrared cluster 2
    # more visible than infrared clusters: the last visible id has no infrared twin
    assert match_clusters(cost[:, :2], method, skip_last=True)[-1] == -1


def test_cross_ari_with_outliers_counts_them_as_one_cluster():
    labels = {0: np.array([0, 0, -1, 1]), 1: np.array([0, -1, 1, 1])}
    pids = {0: np.array([5, 5, 6, 6]), 1: np.array([5, 5, 6, 6])}
    v2i = np.array([0, 1])
    clean = cross_modality_ari(labels, pids, v2i)
    every = cross_modality_ari(labels, pids, v2i, outliers=True)
    assert clean == pytest.approx(1.0)  # the clustered samples are perfectly matched
    want = adjusted_rand_score([5, 5, 6, 6, 5, 5, 6, 6], [0, 0, -1, 1, 0, -1, 1, 1])
    assert every == pytest.approx(want) and every < 0.5


def test_weighted_centres_of_a_zero_confidence_cluster_fall_back_to_the_mean():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], np.float32)
    cent = weighted_centres(f, np.array([0, 0, 1]), np.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(cent, [[0.5, 0.5], [2.0, 2.0]])


def test_effects_rows_without_sca_have_no_confidence_weighting():
    rows = yaml.safe_load((Path(__file__).parents[1] / "benchmarks/effects/mmm.yaml").read_text())
    by = {r["name"]: r.get("overrides", []) for r in rows["rows"]}
    for name in ("CMC only", "+ MMLM"):
        assert "method.confidence=false" in by[name], name


def test_gmm_confidence_on_bimodal_losses():
    rng = np.random.default_rng(0)
    clean = rng.normal(0.5, 0.1, 300)
    noisy = rng.normal(3.0, 0.3, 100)
    w = gmm_confidence(np.r_[clean, noisy])
    assert w[:300].mean() > 0.95 and w[300:].mean() < 0.05
    assert (gmm_confidence(np.ones(5)) == 1).all()


def brute_mmd2(x, y, mul=2.0, num=5):
    z = np.concatenate([x, y])
    n = len(z)
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    bw = d2.sum() / (n * n - n) / mul ** (num // 2)
    k = lambda a, b: sum(np.exp(-((a - b) ** 2).sum() / (bw * mul**i)) for i in range(num))
    xx = np.mean([k(a, b) for a in x for b in x])
    yy = np.mean([k(a, b) for a in y for b in y])
    xy = np.mean([k(a, b) for a in x for b in y])
    return xx + yy - 2 * xy


@pytest.mark.parametrize("n,m", [(4, 4), (3, 5)])
def test_mmd_against_brute_force_kernel_sum(n, m):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, 3)), rng.normal(1, 1, size=(m, 3))
    got = mmd2(torch.tensor(x), torch.tensor(y)).item()
    assert got == pytest.approx(brute_mmd2(x, y), rel=1e-6)


def test_stop_gradient_really_stops_the_gradient():
    """L_Inter = ½[MMD²(v, sg r) + MMD²(r, sg v)]: the gradient reaching v is that of
    ½·MMD²(v, sg r) alone (and r's that of ½·MMD²(r, sg v)). Without the stop-gradient, v
    would also get the gradient of the second term."""
    torch.manual_seed(0)
    v = torch.randn(4, 5, requires_grad=True)
    r = (torch.randn(3, 5) + 0.5).requires_grad_()
    f = torch.cat([v, r])
    is_ir = torch.tensor([False] * 4 + [True] * 3)
    gv, gr = torch.autograd.grad(
        inter_modality_mmd(f, torch.zeros(7, dtype=torch.long), is_ir), [v, r]
    )
    want_v = torch.autograd.grad(0.5 * mmd2(v, r.detach()), v)[0]
    want_r = torch.autograd.grad(0.5 * mmd2(r, v.detach()), r)[0]
    torch.testing.assert_close(gv, want_v)
    torch.testing.assert_close(gr, want_r)
    no_sg = torch.autograd.grad(0.5 * (mmd2(v, r) + mmd2(r, v)), v)[0]
    assert not torch.allclose(no_sg, want_v, atol=1e-4)  # the test can tell the two apart


def test_instant_mmm_run_through_the_cli(sysu_root, tmp_path):
    out = tmp_path / "mmm"
    r = CliRunner().invoke(
        app,
        [
            "train",
            str(INSTANT),
            *run_overrides(sysu_root, out, tmp_path / "c"),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for key in ("nce_visible", "nce_infrared", "intra", "visible_confidence"):
        assert key in rows[0], key
    # epoch 1 is the CMC-only warm-up: no matching, so no matched-label terms yet
    assert "cross_ARI" not in rows[0] and "cross" not in rows[0] and "inter" not in rows[0]
    for key in ("cross_ARI", "cross_ARI_all", "cross_ARI_single_memory", "inter"):
        assert key in rows[1], key
    assert "cross" not in rows[1]  # the paper's reading: no PGM cross term by default
    for key in ("cross_ARI", "cross_ARI_all"):
        assert -1 <= rows[1][key] <= 1
    assert (out / "results.json").is_file()


def test_official_code_options_run_and_freeze_labels(sysu_root, tmp_path):
    out = tmp_path / "official"
    r = CliRunner().invoke(
        app,
        [
            "train",
            str(INSTANT),
            *run_overrides(sysu_root, out, tmp_path / "c"),
            "method.schedule=once",
            "method.matching=greedy",
            "method.cost=infrared",
            "method.intra_loss=l1",
            "method.inter_form=official",
            "method.lambda_triplet=1",
            "method.compat_skip_last_cluster=true",
            "method.match_start_epoch=1",
            "method.inter_start_epoch=1",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert "cross_ARI" in rows[0] and "inter" in rows[0] and "triplet" in rows[0]
    assert "intra" not in rows[0]  # the L1 prototypes come from the first frozen epoch
    assert "visible_clusters" not in rows[1]  # labels frozen after the first matching
    assert "visible_confidence" in rows[1]  # ... but the GMM is refitted every epoch
    assert "intra" in rows[1] and "loss" in rows[1]


def test_frozen_labels_survive_a_resume(sysu_root, tmp_path):
    """`schedule: once`: a run stopped after epoch 2 and resumed trains epoch 3 on the
    frozen labels and memories from the checkpoint, ending with the uninterrupted run's
    weights and memories (it used to re-cluster from the resumed weights)."""
    a, mid, b = straight_and_resumed(
        INSTANT, sysu_root, tmp_path, 3, 2, "method.schedule=once", "method.intra_loss=l1"
    )
    assert set(mid["extra"]["memories"]) >= {"v", "r"}  # frozen state is checkpointed
    assert "prototypes" in mid["extra"]  # the L1 Intra targets too
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, f in a["extra"]["memories"].items():
        assert torch.equal(f, b["extra"]["memories"][k]), k
    rows = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert "visible_clusters" not in json.loads(rows[-1])  # no re-clustering after resume
