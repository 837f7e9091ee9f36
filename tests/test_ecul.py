"""ECUL: TSMem rules and schedule, inter-modality instance selection, the instance loss,
cross-modal aggregation, an instant CLI run and exact resume across the TSMem switch."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from conftest import run_overrides, straight_and_resumed
from vireid.cli import app
from vireid.clustering.instance_selection import mixed_cluster_mask, select_instances
from vireid.losses.instance import instance_nce
from vireid.losses.memory import ClusterMemory
from vireid.losses.tsmem import TwoStepMemory, tsmem_rule, update_targets
from vireid.methods.ecul import cross_modal_centres, joint_v2i

INSTANT = Path(__file__).parents[1] / "configs" / "tests" / "instant_ecul.yaml"


def unit(rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_tsmem_rule_switches_at_switch_epoch():
    rules = [tsmem_rule(e, 3, "random", "mean") for e in range(6)]
    assert rules == ["random"] * 3 + ["mean"] * 3
    assert tsmem_rule(0, 0, "random", "hard") == "hard"  # 0: stage 2 from the start
    assert {tsmem_rule(e, None, "random", "mean") for e in range(5)} == {"sequential"}


@pytest.mark.parametrize("rule", ["mean", "random", "hard"])
def test_tsmem_updates_equal_hand_computed_ones(rule):
    m = 0.1
    mem0 = unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    x = unit([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 2, 0]])
    y = torch.tensor([0, 0, 1, 1])
    mem = TwoStepMemory(3, 3, momentum=m)
    mem.reset(mem0.clone())
    if rule == "random":
        keys = torch.rand(4, generator=torch.Generator().manual_seed(0))
        mem.update_with(x, y, rule, torch.Generator().manual_seed(0))
    else:
        mem.update_with(x, y, rule)
    if rule == "mean":
        t0, t1 = (x[0] + x[1]) / 2, (x[2] + x[3]) / 2
    elif rule == "random":
        t0, t1 = x[int(keys[:2].argmin())], x[2 + int(keys[2:].argmin())]
    else:  # least similar to the memory entry
        t0 = x[int((x[:2] @ mem0[0]).argmin())]
        t1 = x[2 + int((x[2:] @ mem0[1]).argmin())]
    want0 = F.normalize(m * mem0[0] + (1 - m) * t0, dim=0)
    want1 = F.normalize(m * mem0[1] + (1 - m) * t1, dim=0)
    torch.testing.assert_close(mem.features[0], want0)
    torch.testing.assert_close(mem.features[1], want1)
    torch.testing.assert_close(mem.features[2], mem0[2])  # absent cluster untouched


def test_tsmem_random_targets_follow_the_keys_and_sequential_is_cluster_contrast():
    x = unit([[1, 0], [0, 1], [1, 1], [1, -1], [2, 1]])
    y = torch.tensor([2, 0, 2, 0, 2])
    t, ys = update_targets(x, y, "random", None, torch.tensor([0.5, 0.7, 0.1, 0.3, 0.2]))
    assert ys.tolist() == [0, 2]
    torch.testing.assert_close(t, x[[3, 2]])  # smallest key of each cluster
    a, b = TwoStepMemory(2, 3), ClusterMemory(2, 3)
    for mem in (a, b):
        mem.reset(unit([[1, 0], [0, 1], [1, 1]]))
    a.update_with(x, y, "sequential")
    b.update(x, y)
    torch.testing.assert_close(a.features, b.features)
    with pytest.raises(ValueError, match="TSMem rule"):
        update_targets(x, y, "median", a.features)


def hand_clusters():
    """Joint cluster 0: visible 0,1 + infrared 2,3,4; cluster 1: visible only (5, 6);
    sample 7 an outlier. Features on a circle so nearest neighbours are obvious."""
    ang = np.array([0, 90, 10, 80, 40, 180, 190, 270]) * np.pi / 180
    feats = np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float32)
    joint = np.array([0, 0, 0, 0, 0, 1, 1, -1])
    is_ir = np.array([0, 0, 1, 1, 1, 0, 0, 1], bool)
    return feats, joint, is_ir


def test_instance_selection_on_hand_built_clusters():
    feats, joint, is_ir = hand_clusters()
    assert mixed_cluster_mask(joint, is_ir).tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    near = select_instances(feats, joint, is_ir, "nearest", k=1)
    assert near[:, 0].tolist() == [2, 3, 0, 1, 0, -1, -1, -1]
    two = select_instances(feats, joint, is_ir, "nearest", k=2)
    assert two[0].tolist() == [2, 4] and two[1].tolist() == [3, 4]
    assert two[4].tolist() == [0, 1]
    mutual = select_instances(feats, joint, is_ir, "mutual", k=1)
    # 4's nearest visible is 0, but 0's nearest infrared is 2: not mutual
    assert mutual[:, 0].tolist() == [2, 3, 0, 1, -1, -1, -1, -1]
    everyone = select_instances(feats, joint, is_ir, "all")
    assert sorted(everyone[0][everyone[0] >= 0]) == [2, 3, 4]
    assert sorted(everyone[3][everyone[3] >= 0]) == [0, 1]
    assert (everyone[5:] < 0).all()


def test_instance_nce_equals_a_brute_force_loop():
    torch.manual_seed(0)
    feats, joint, is_ir = hand_clusters()
    pos = torch.from_numpy(select_instances(feats, joint, is_ir, "nearest", k=2))
    memory = F.normalize(torch.randn(8, 2), dim=1)
    f = torch.randn(3, 2, requires_grad=True)
    index = torch.tensor([0, 3, 5])  # 5 has no positive: left out
    got = instance_nce(f, index, memory, pos, torch.from_numpy(joint), temp=0.5)
    terms = []
    for r, i in enumerate(index.tolist()[:2]):
        s = F.normalize(f[r], dim=0) @ memory.T / 0.5
        p = [j for j in pos[i].tolist() if j >= 0]
        neg = [k for k in range(8) if joint[k] != joint[i]]
        num = torch.logsumexp(s[p], 0)
        den = torch.logsumexp(s[p + neg], 0)
        terms.append(den - num)
    torch.testing.assert_close(got, torch.stack(terms).mean())
    got.backward()
    assert f.grad[2].abs().sum() == 0 and f.grad[0].abs().sum() > 0
    none = instance_nce(f, torch.tensor([5, 6]), memory, pos, torch.from_numpy(joint))
    assert float(none) == 0 and not none.requires_grad


def test_cross_modal_aggregation_and_joint_map():
    feats = np.array([[1, 0], [3, 0], [0, 2], [5, 5], [0, 4]], np.float32)
    joint = np.array([0, 0, 0, 1, 2])
    is_ir = np.array([0, 0, 1, 0, 1], bool)
    cent = cross_modal_centres(feats, joint, is_ir)
    np.testing.assert_allclose(cent[0], 0.5 * (np.array([2, 0]) + np.array([0, 2])))
    np.testing.assert_allclose(cent[1], [5, 5])  # visible only: its mean
    np.testing.assert_allclose(cent[2], [0, 4])  # infrared only
    # visible first (samples 0, 1, 3: intra clusters 0, 0, 1), then infrared (2, 4: 0, 1)
    v2i = joint_v2i(np.array([0, 0, 1]), np.array([0, 1]), np.array([0, 0, 1, 0, 2]))
    assert v2i.tolist() == [0, -1]


def test_instant_ecul_run_through_the_cli(sysu_root, tmp_path):
    out = tmp_path / "ecul"
    r = CliRunner().invoke(
        app, ["train", str(INSTANT), *run_overrides(sysu_root, out, tmp_path / "c")]
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["memory_rule"] for row in rows] == ["random", "mean"]  # switch_epoch 1
    for key in ("joint_clusters", "joint_ARI", "joint_NMI", "cross_ARI", "selected_ratio"):
        assert key in rows[0], key
    assert set(rows[0]["terms"]) == {"instance", "nce_cross", "nce_infrared", "nce_visible"}
    assert (out / "results.json").is_file()


def test_ecul_is_listed():
    r = CliRunner().invoke(app, ["list", "methods"])
    assert r.exit_code == 0 and "ecul" in r.output


def test_exact_resume_across_the_tsmem_switch(sysu_root, tmp_path):
    """Stopped after epoch 1 of 3 (stage 1, random rule) and resumed: epoch 2 draws the
    same random members, epoch 3 switches to the mean rule; the weights equal the
    uninterrupted run's bit for bit."""
    a, mid, b = straight_and_resumed(
        INSTANT, sysu_root, tmp_path, 3, 1, "method.tsmem.switch_epoch=2"
    )
    assert mid["epoch"] == 1
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    log = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in log]
    assert [r["memory_rule"] for r in rows] == ["random", "random", "mean"]


def test_joint_k3_below_joint_k1_is_refused_when_the_config_loads():
    from vireid.config import load_config
    from vireid.config.loader import ConfigError

    with pytest.raises((ConfigError, ValueError), match="joint_k3=10 is below joint_k1=15"):
        load_config(INSTANT, ["method.joint_k1=15", "method.joint_k3=10"])
    assert load_config(INSTANT, ["method.joint_k3=null"]).method.joint_k3 is None


def test_cluster_knn_setting_reaches_the_joint_clustering(monkeypatch):
    """``method.cluster.knn`` (ivf / hnsw) builds the approximate search for EMCC too."""
    from torch import nn

    from vireid.config.schema import ECULMethodCfg
    from vireid.methods import ecul as ecul_mod

    seen = {}

    def fake(x, *a, ann=None, **k):
        seen["ann"] = ann
        return np.full(len(x), -1, np.int64)

    monkeypatch.setattr(ecul_mod, "emcc_labels", fake)
    cfg = ECULMethodCfg(camera_aware=False)
    cfg.cluster.knn = "hnsw"
    method = ecul_mod.ECUL(nn.Linear(2, 2), cfg)
    feats = {0: np.eye(4, dtype=np.float32), 1: np.eye(4, dtype=np.float32)[::-1].copy()}
    labels = {0: np.array([0, 0, 1, 1]), 1: np.array([0, 0, 1, 1])}
    method.plan(0, feats, labels)
    assert seen["ann"] is not None and seen["ann"].method == "hnsw"


def grouped():
    """Clusters 0 (groups 0, 1), 1 (group 1 only), 2 (groups 0, 2); 2-d features."""
    feats = np.array(
        [[1, 0], [1, 0.2], [0, 1], [0.2, 1], [-1, 0], [-1, -0.5], [0.5, -1], [0.3, 0.3]],
        np.float32,
    )
    labels = np.array([0, 0, 0, 1, 2, 2, 2, -1])
    groups = np.array([0, 0, 1, 1, 0, 0, 2, 0])
    return feats, labels, groups


def test_grouped_memory_rows_are_the_group_means():
    from vireid.losses.grouped_memory import GroupedMemory

    feats, labels, groups = grouped()
    mem = GroupedMemory.from_features(feats, labels, groups)
    assert mem.row_cluster.tolist() == [0, 0, 1, 2, 2]
    torch.testing.assert_close(mem.features[0], unit([[1, 0.1]])[0])
    torch.testing.assert_close(mem.features[1], unit([[0, 1]])[0])
    assert mem.row_of(torch.tensor([0, 2, 1]), torch.tensor([1, 2, 1])).tolist() == [1, 4, 2]


def test_grouped_memory_set_loss_equals_a_brute_force_loop():
    """``set``: a cluster scores log(mean_g exp(f·M_cg / τ)); CE over the clusters."""
    from vireid.losses.grouped_memory import GroupedMemory

    feats, labels, groups = grouped()
    mem = GroupedMemory.from_features(feats, labels, groups, temp=0.3, compose="set")
    f = torch.tensor([[1.0, 0.5], [-0.2, 1.0], [0.3, -1.0]], requires_grad=True)
    y = torch.tensor([0, 1, 2])
    got = mem(f, y)
    rows = mem.features
    terms = []
    for b in range(3):
        s = F.normalize(f[b], dim=0) @ rows.T / 0.3
        score = torch.stack(
            [torch.log(torch.exp(s[mem.row_cluster == c]).mean()) for c in range(3)]
        )
        terms.append(-torch.log_softmax(score, 0)[y[b]])
    torch.testing.assert_close(got, torch.stack(terms).mean())


def test_grouped_memory_with_one_row_per_cluster_is_cluster_nce():
    from vireid.clustering import centroids
    from vireid.losses.grouped_memory import GroupedMemory

    feats, labels, _ = grouped()
    one = np.zeros(len(labels), np.int64)
    f, y = torch.randn(4, 2), torch.tensor([0, 1, 2, 0])
    plain = ClusterMemory(2, 3, temp=0.2)
    plain.reset(torch.from_numpy(centroids(feats, labels)))
    for compose in ("set", "mean"):
        mem = GroupedMemory.from_features(feats, labels, one, temp=0.2, compose=compose)
        torch.testing.assert_close(mem(f, y), plain(f, y))


def test_grouped_memory_mean_proxy_and_group_updates():
    """``mean``: the proxy is the normalised mean of the cluster's rows; an update moves
    only the rows of the groups in the batch."""
    from vireid.losses.grouped_memory import GroupedMemory

    feats, labels, groups = grouped()
    mem = GroupedMemory.from_features(feats, labels, groups, momentum=0.1)
    before = mem.features.clone()
    torch.testing.assert_close(mem.proxies()[0], F.normalize(before[0] + before[1], dim=0))
    x = unit([[0.6, 0.8], [0.8, 0.6]])
    mem.update_groups(x, torch.tensor([0, 0]), torch.tensor([1, 1]), "mean")
    want = F.normalize(0.1 * before[1] + 0.9 * x.mean(0), dim=0)
    torch.testing.assert_close(mem.features[1], want)
    torch.testing.assert_close(mem.features[[0, 2, 3, 4]], before[[0, 2, 3, 4]])
    torch.testing.assert_close(mem.proxies()[0], F.normalize(before[0] + mem.features[1], dim=0))
    with pytest.raises(ValueError, match="memory compose"):
        GroupedMemory.from_features(feats, labels, groups, compose="max")
