import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import run_overrides, straight_and_resumed
from vireid.cli import app
from vireid.clustering.multi_memory import (
    cluster_memories,
    greedy_match,
    match_clusters,
    multi_memory_cost,
    transfer_labels,
)
from vireid.losses.confidence import gmm_confidence
from vireid.losses.mmd import inter_modality_mmd, mmd2

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


def test_multi_memory_beats_single_memory_on_two_view_clusters():
    # infrared clusters each contain only ONE of the two views: a centroid of the visible
    # cluster (the mean of both views) is equally far from either, memories are not
    rng = np.random.default_rng(3)
    n, d = 6, 32
    views = rng.normal(size=(n, 2, d)) * 3
    fv = np.concatenate(
        [views[p, v] + 0.1 * rng.normal(size=(5, d)) for p in range(n) for v in (0, 1)]
    ).astype(np.float32)
    lv = np.repeat(np.arange(n), 10)
    fr = np.concatenate([views[p, p % 2] + 0.1 * rng.normal(size=(5, d)) for p in range(n)]).astype(
        np.float32
    )
    lr = np.repeat(np.arange(n), 5)
    mv, cv = cluster_memories(fv, lv, n=2, n_init=3)
    mr, cr = cluster_memories(fr, lr, n=2, n_init=3)
    v2r = match_clusters(multi_memory_cost(mv, cv, mr, cr, "infrared"), "hungarian")
    assert v2r.tolist() == list(range(n))


def test_kmeans_fallback_for_small_clusters():
    f = np.arange(12, dtype=np.float32).reshape(6, 2)
    labels = np.array([0, 0, 1, 1, 1, 1])
    mem, cnt = cluster_memories(f, labels, n=4, n_init=1)
    assert cnt.tolist() == [2, 4]
    np.testing.assert_array_equal(mem[0, :2], f[:2])  # each sample is its own memory
    assert np.isnan(mem[0, 2:]).all()
    cost = multi_memory_cost(mem, cnt, mem, cnt)
    assert np.isfinite(cost).all() and cost[0, 0] == pytest.approx(0, abs=1e-5)


def test_greedy_matching_and_label_transfer():
    cost = np.array([[0.1, 0.9], [0.2, 0.8], [0.9, 0.1]])
    assert greedy_match(cost).tolist() == [0, 0, 1]
    assert greedy_match(cost, skip_last=True).tolist() == [0, 0, -1]
    uv, ur = transfer_labels(np.array([0, 1, 2, -1]), np.array([0, 1, 1]), np.array([1, 0, -1]))
    assert uv.tolist() == [1, 0, 4, -1] and ur.tolist() == [0, 1, 1]  # unmatched → fresh id


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
    torch.manual_seed(0)
    f = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    is_ir = torch.tensor([False, False, True, True] * 2)
    x = f * 1.0
    loss_v = 0.5 * mmd2(x[~is_ir & (labels == 0)], x[is_ir & (labels == 0)].detach())
    loss_v.backward()
    assert f.grad[is_ir].abs().sum() == 0  # the detached side gets nothing
    assert f.grad[~is_ir & (labels == 0)].abs().sum() > 0
    f.grad = None
    inter_modality_mmd(f, labels, is_ir).backward()
    assert (f.grad.abs().sum(1) > 0).all()  # both sides move, each only through its own term


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
    for key in (
        "cross_ARI",
        "cross_ARI_single_memory",
        "nce_visible",
        "nce_infrared",
        "intra",
        "visible_confidence",
    ):
        assert key in rows[0], key
    assert "inter" in rows[1] and "inter" not in rows[0]  # Inter starts at epoch 2 here
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
            "method.compat_skip_last_cluster=true",
            "method.inter_start_epoch=1",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert "cross_ARI" in rows[0] and "inter" in rows[0]
    assert "visible_clusters" not in rows[1]  # labels frozen after the first matching
    assert "loss" in rows[1]


def test_frozen_labels_survive_a_resume(sysu_root, tmp_path):
    """`schedule: once`: a run stopped after epoch 2 and resumed trains epoch 3 on the
    frozen labels and memories from the checkpoint, ending with the uninterrupted run's
    weights and memories (it used to re-cluster from the resumed weights)."""
    a, mid, b = straight_and_resumed(INSTANT, sysu_root, tmp_path, 3, 2, "method.schedule=once")
    assert set(mid["extra"]["memories"]) >= {"v", "r"}  # frozen state is checkpointed
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, f in a["extra"]["memories"].items():
        assert torch.equal(f, b["extra"]["memories"][k]), k
    rows = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert "visible_clusters" not in json.loads(rows[-1])  # no re-clustering after resume
