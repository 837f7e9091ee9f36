"""Test-time options: re-ranking k1/k2/λ, αQE, the pool-vs-BN feature, and eval.rerank read
from the config. Each against a reference on small data."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_rerank import dense_reference
from vireid.data.records import Modality, Sample
from vireid.evaluation.evaluator import score
from vireid.evaluation.ranking import evaluate, evaluate_features
from vireid.evaluation.test_time import TestTime, query_expansion


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _data(seed=0, nq=12, ng=30, d=16, ids=6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, d))
    qp, gp = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    qf = _unit(centers[qp] + 1.5 * rng.normal(size=(nq, d)))
    gf = _unit(centers[gp] + 1.5 * rng.normal(size=(ng, d)))
    q = [Sample(f"q{i}", int(p), 3, Modality.INFRARED) for i, p in enumerate(qp)]
    g = [Sample(f"g{i}", int(p), 1, Modality.VISIBLE) for i, p in enumerate(gp)]
    return q, g, qf, gf


def aqe_reference(qf, gf, k, alpha):
    """fast-reid's ``aqe`` (one round), written from its loop over a dense similarity."""
    feats = np.concatenate([qf, gf])
    sims = feats @ feats.T
    out = []
    for sim in sims:
        top = np.argsort(-sim, kind="stable")[:k]
        w = np.power(sim[top], alpha)[:, None]
        out.append(np.mean(feats[top] * w, axis=0))
    out = _unit(np.stack(out))
    return out[: len(qf)], out[len(qf) :]


@pytest.mark.parametrize("k,alpha", [(1, 3.0), (5, 3.0), (8, 1.0)])
def test_query_expansion_matches_the_dense_reference(k, alpha):
    _, _, qf, gf = _data()
    got_q, got_g = query_expansion(qf, gf, k, alpha)
    ref_q, ref_g = aqe_reference(qf, gf, k, alpha)
    np.testing.assert_allclose(got_q, ref_q, atol=1e-5)
    np.testing.assert_allclose(got_g, ref_g, atol=1e-5)
    if k == 1:  # each row's only neighbour is itself: nothing moves
        np.testing.assert_allclose(got_q, qf, atol=1e-6)


def test_score_applies_query_expansion_and_rerank_settings():
    q, g, qf, gf = _data(1)
    qp, gp = np.array([s.pid for s in q]), np.array([s.pid for s in g])
    qc, gc = np.array([3] * len(q)), np.array([1] * len(g))
    # αQE: the metrics of the reference-expanded features
    got = score("sysu", q, g, qf, gf, TestTime(qe_k=5))
    eq, eg = aqe_reference(qf, gf, 5, 3.0)
    want = evaluate_features(eq, eg, qp, gp, qc, gc, "sysu")
    assert got.mAP == pytest.approx(want.mAP, abs=1e-9)
    assert got.mAP != pytest.approx(score("sysu", q, g, qf, gf).mAP, abs=1e-6)
    # re-ranking with k1/k2/λ of one's choice: the dense reference with the same settings
    d = lambda a, b: np.sqrt(np.maximum(2 - 2 * a @ b.T, 0))
    for k1, k2, lam in [(20, 6, 0.3), (6, 3, 0.6)]:
        got = score("sysu", q, g, qf, gf, TestTime(rerank=True, k1=k1, k2=k2, lam=lam))
        ref = dense_reference(d(qf, gf), d(qf, qf), d(gf, gf), k1, k2, lam)
        want = evaluate(ref, qp, gp, qc, gc, "sysu")
        assert got.mAP == pytest.approx(want.mAP, abs=1e-6), (k1, k2, lam)
    a = score("sysu", q, g, qf, gf, TestTime(rerank=True, k1=6, k2=3, lam=0.6))
    b = score("sysu", q, g, qf, gf, TestTime(rerank=True))
    assert a.mAP != pytest.approx(b.mAP, abs=1e-6)  # the settings reach the re-ranking


def _model_cfg_device(checkpoint):
    from vireid.engine.restore import load_model

    model, cfg, _, device = load_model(checkpoint, "cpu")
    return model, cfg, device


def test_eval_rerank_and_query_expansion_are_read_from_the_config(checkpoint, sysu_root):
    from vireid.engine.builders import featurizer
    from vireid.engine.distributed import DistInfo
    from vireid.engine.run import run_evaluation
    from vireid.evaluation.evaluator import evaluate_protocol

    model, cfg, device = _model_cfg_device(checkpoint)
    cfg.eval.rerank, cfg.eval.rerank_k1, cfg.eval.query_expansion = True, 8, 3
    res = run_evaluation(model, cfg, device, DistInfo(), [0], root=sysu_root)
    assert res.rerank and res.to_json()["test_time"]["k1"] == 8
    tt = TestTime(rerank=True, k1=8, qe_k=3)
    feat = featurizer(model, cfg, device, DistInfo())
    want = evaluate_protocol("sysu/all/single", sysu_root, [0], feat, tt)
    assert res.table() == want.table()
    plain = evaluate_protocol("sysu/all/single", sysu_root, [0], feat)
    assert res.table() != plain.table()


def test_pool_feature_is_the_pre_bn_feature(checkpoint, sysu_root):
    from vireid.data.cache import load_rgb
    from vireid.data.loader import MODALITY_INDEX
    from vireid.data.protocols import query_gallery
    from vireid.data.transforms import build_test_transform
    from vireid.engine.builders import featurizer
    from vireid.engine.distributed import DistInfo

    model, cfg, device = _model_cfg_device(checkpoint)
    q, g = query_gallery("sysu/all/single", sysu_root, 0)
    samples = [*q[:3], *g[:3]]
    tf = build_test_transform(cfg.data.height, cfg.data.width)
    x = torch.stack([tf(load_rgb(s.path)) for s in samples])
    m = torch.tensor([MODALITY_INDEX[s.modality] for s in samples])
    with torch.no_grad():
        out = model.eval()(x, m)
    cfg.eval.flip = False
    for which, key in (("bn", "feat"), ("pool", "pool")):
        cfg.eval.feature = which
        got = featurizer(model, cfg, device, DistInfo())(samples)
        np.testing.assert_allclose(got, F.normalize(out[key], dim=1).numpy(), atol=1e-5)
    assert not np.allclose(F.normalize(out["feat"]).numpy(), F.normalize(out["pool"]).numpy())


def test_cli_options_reach_the_evaluation(checkpoint, sysu_root, tmp_path):
    import json

    from typer.testing import CliRunner

    from vireid.cli import app

    args = ["eval", str(checkpoint), "--root", str(sysu_root), "--trials", "1"]
    opts = ["--rerank", "--rerank-k1", "9", "--rerank-lambda", "0.5", "--query-expansion", "2"]
    r = CliRunner().invoke(app, [*args, *opts, "--feature", "pool", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["rerank"] and res["test_time"] == {
        "rerank": True,
        "k1": 9,
        "k2": 6,
        "lam": 0.5,
        "qe_k": 2,
        "qe_alpha": 3.0,
    }
    r = CliRunner().invoke(app, [*args, "--feature", "fc"])
    assert r.exit_code == 2 and "--feature 'fc'" in r.output
