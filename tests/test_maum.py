"""MAUM: cosine-proxy losses against naive loops, stop-gradient of the unidirectional
terms, the proxy memory bank, and an instant CLI run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import run_overrides, straight_and_resumed
from vireid.cli import app
from vireid.config import load_config
from vireid.losses.proxy import proxy_ce, unidirectional_ce
from vireid.methods import build_method
from vireid.models import build_model

INSTANT = Path(__file__).parents[1] / "configs" / "tests" / "instant.yaml"


def naive_proxy_ce(f, y, w, temp):
    total = 0.0
    for i in range(len(f)):
        fi = f[i] / np.linalg.norm(f[i])
        logits = [fi @ (wc / np.linalg.norm(wc)) / temp for wc in w]
        total += -logits[y[i]] + np.log(np.sum(np.exp(logits)))
    return total / len(f)


def test_proxy_ce_equals_naive_loop():
    rng = np.random.default_rng(0)
    f, w = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
    y = rng.integers(0, 4, 7)
    ours = proxy_ce(torch.tensor(f), torch.tensor(y), torch.tensor(w), 0.1)
    assert float(ours) == pytest.approx(naive_proxy_ce(f, y, w, 0.1), rel=1e-10)
    refs = [torch.tensor(w), torch.tensor(w[::-1].copy())]
    uni = unidirectional_ce(torch.tensor(f), torch.tensor(y), refs, 0.1)
    expect = (naive_proxy_ce(f, y, w, 0.1) + naive_proxy_ce(f, y, w[::-1], 0.1)) / 2
    assert float(uni) == pytest.approx(expect, rel=1e-10)
    empty = proxy_ce(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), torch.tensor(w), 0.1)
    assert float(empty) == 0.0


def _method(**over):
    cfg = load_config(INSTANT, ["method.name=maum", *[f"method.{k}={v}" for k, v in over.items()]])
    torch.manual_seed(0)
    model = build_model(cfg.model, num_classes=6)
    return build_method(cfg.method, model), cfg


def _batch():
    g = torch.Generator().manual_seed(1)
    return {
        "images": torch.rand(8, 3, 64, 32, generator=g),
        "labels": torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]),
        "modality": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
    }


def test_unidirectional_terms_do_not_move_the_proxies():
    """Only L_MS trains the proxies (each modality's own); L_Uni only moves features."""
    method, _ = _method(ms_weight=0.0, triplet_weight=0.0)
    out = method.training_step(_batch())
    out["loss"].backward()
    assert method.proxies.grad is None or torch.count_nonzero(method.proxies.grad) == 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.model.parameters())
    method.zero_grad()
    method, _ = _method(uni_weight=0.0, triplet_weight=0.0)
    method.training_step(_batch())["loss"].backward()
    g = method.proxies.grad
    assert g[0].abs().sum() > 0 and g[1].abs().sum() > 0
    method.zero_grad()
    visible_only = {**_batch(), "modality": torch.zeros(8, dtype=torch.long)}
    method.training_step(visible_only)["loss"].backward()
    g = method.proxies.grad
    assert g[0].abs().sum() > 0 and g[1].abs().sum() == 0  # proxies learn per modality
    assert not method.model.classifier.weight.requires_grad  # shared proxy off


def test_two_phase_and_memory_bank():
    method, _ = _method(uni_start_epoch=2, memory_size=3)
    assert "uni" not in method.training_step(_batch())
    method.set_epoch(2)
    assert "uni" in method.training_step(_batch())
    snapshots = []
    for step in range(4):
        with torch.no_grad():
            method.proxies.add_(1.0)  # stands in for an optimiser step
        snapshots.append(method.proxies.detach().clone())
        method.after_optimizer_step()
        assert int(method.bank_count) == min(step + 1, 2)
    assert torch.equal(method.bank[0], snapshots[-1]) and torch.equal(method.bank[1], snapshots[-2])
    refs = method.references(1)
    assert len(refs) == 3 and torch.equal(refs[2], snapshots[-2][1])


def test_maum_trains_through_the_cli(sysu_root, tmp_path):
    out = tmp_path / "run"
    args = ["train", str(INSTANT), *run_overrides(sysu_root, out, tmp_path / "c")]
    args += ["method.name=maum", "method.memory_size=2"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(k in rows[0] for k in ("ms", "uni", "triplet", "acc"))
    assert (out / "results.json").is_file()


def test_maum_resumes_exactly_with_its_proxy_bank(sysu_root, tmp_path):
    """The bank is a buffer: a run stopped after epoch 1 and resumed ends with the
    uninterrupted run's weights, proxies and bank, bit for bit."""
    over = ("method.name=maum", "method.memory_size=3")
    a, _, b = straight_and_resumed(INSTANT, sysu_root, tmp_path, 2, 1, *over)
    a, b = a["model"], b["model"]
    assert {"proxies", "bank", "bank_count"} <= set(a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
