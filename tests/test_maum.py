"""MAUM: cosine-proxy losses against naive loops, the direction of the unidirectional
terms (infrared → visible proxies and the reverse), stop-gradient, the two phases, the
per-identity proxy memory reaching the loss, the recipes, the modality-imbalance data
option, and instant CLI runs."""

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
    method, _ = _method(ms_weight=0.0, triplet_weight=0.0, uni_start_epoch=0)
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


def _feats(method):
    seen = []
    method.model.bottleneck.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    return seen


def test_unidirectional_terms_pair_each_modality_with_the_other_proxies():
    """L_Uni = CE(f_I against the visible proxies) + CE(f_V against the infrared proxies),
    by a numpy loop; a swap (each modality against its own proxies) is a different value."""
    method, cfg = _method(memory_size=1, uni_start_epoch=0)
    with torch.no_grad():
        method.proxies[1].normal_()  # visible and infrared proxies far apart
    seen = _feats(method)
    batch = _batch()
    out = method.training_step(batch)
    f, y = seen[-1].numpy().astype(np.float64), batch["labels"].numpy()
    w = method.proxies.detach().numpy().astype(np.float64)
    vis, ir = batch["modality"].numpy() == 0, batch["modality"].numpy() == 1
    t = cfg.method.temp
    expect = naive_proxy_ce(f[ir], y[ir], w[0], t) + naive_proxy_ce(f[vis], y[vis], w[1], t)
    swapped = naive_proxy_ce(f[ir], y[ir], w[1], t) + naive_proxy_ce(f[vis], y[vis], w[0], t)
    assert float(out["uni"]) == pytest.approx(expect, rel=1e-5)
    assert abs(expect - swapped) > 1e-2 * expect


def test_a_skipped_optimizer_step_stores_no_copy():
    """AMP's GradScaler skips a step with non-finite gradients; the trainer says so and
    the bank must not roll (it would store a copy of an unchanged proxy)."""
    method, _ = _method(memory_size=3, uni_start_epoch=0)
    method.training_step(_batch())
    method.optimizer_stepped = False
    method.after_optimizer_step()
    assert method.bank_writes.sum() == 0 and method.bank.abs().sum() == 0
    method.optimizer_stepped = True
    method.training_step(_batch())
    method.after_optimizer_step()
    assert method.bank_writes.sum() > 0


def test_two_phases_by_default():
    """The unidirectional terms join the loss only from ``uni_start_epoch`` (default > 0):
    before it the loss is L_MS + triplet exactly."""
    method, cfg = _method()
    assert cfg.method.uni_start_epoch > 0 and cfg.method.memory_size > 1
    out = method.training_step(_batch())
    assert "uni" not in out
    assert float(out["loss"].detach()) == pytest.approx(float(out["ms"] + out["triplet"]), rel=1e-6)
    method.set_epoch(cfg.method.uni_start_epoch)
    out = method.training_step(_batch())
    total = out["ms"] + out["uni"] + out["triplet"]
    assert float(out["loss"].detach()) == pytest.approx(float(total), rel=1e-6)


def test_memory_holds_a_copy_per_identity_update():
    """After a step, only the identities of the batch (per modality) get a new copy, the
    copy is their proxy from before that step (so no stored copy equals the current
    proxy), and successive copies of one identity differ."""
    method, _ = _method(memory_size=3, uni_start_epoch=0)
    opt = torch.optim.SGD([method.proxies], lr=1.0)
    batch = {**_batch(), "labels": torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])}
    before = []
    for _ in range(3):
        before.append(method.proxies.detach().clone())
        opt.zero_grad()
        method.training_step(batch)["loss"].backward()
        opt.step()
        method.after_optimizer_step()
    w = method.bank_writes
    assert w[0].tolist() == [3, 3, 0, 0, 0, 0] and w[1].tolist() == [0, 0, 3, 3, 0, 0]
    # ring of 2 slots per identity: the third copy overwrote slot 0
    assert torch.equal(method.bank[0, 0, :2], before[2][0, :2])
    assert torch.equal(method.bank[1, 0, :2], before[1][0, :2])
    assert torch.equal(method.bank[0, 1, 2:4], before[2][1, 2:4])
    assert not torch.equal(method.bank[0, 0, :2], method.bank[1, 0, :2])
    for j in range(2):  # the newest copy is one positive update behind the current proxy
        assert not torch.allclose(method.bank[j, 0, :2], method.proxies[0, :2].detach())
    assert method.bank[:, 0, 2:].abs().sum() == 0 and method.bank[:, 1, :2].abs().sum() == 0
    refs = method.references(0)  # identities without copies fall back to the current proxy
    assert len(refs) == 3 and torch.equal(refs[1][2:], method.proxies[0, 2:].detach())


def test_stored_copies_reach_the_loss_in_training_step():
    method, cfg = _method(memory_size=3, uni_start_epoch=0, ms_weight=0.0, triplet_weight=0.0)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        method.bank.copy_(torch.randn(method.bank.shape, generator=g))
        method.bank_writes.fill_(2)  # every identity holds two copies
    seen = _feats(method)
    batch = _batch()
    out = method.training_step(batch)
    f, y = seen[-1].numpy().astype(np.float64), batch["labels"].numpy()
    vis, ir = batch["modality"].numpy() == 0, batch["modality"].numpy() == 1
    cur = method.proxies.detach().numpy().astype(np.float64)
    bank = method.bank.numpy().astype(np.float64)
    t = cfg.method.temp
    expect = 0.0
    for mod_f, other in ((ir, 0), (vis, 1)):
        sets = [cur[other], bank[0, other], bank[1, other]]
        expect += np.mean([naive_proxy_ce(f[mod_f], y[mod_f], s, t) for s in sets])
    assert float(out["uni"]) == pytest.approx(expect, rel=1e-5)
    assert float(out["loss"].detach()) == pytest.approx(expect, rel=1e-5)


def test_recipes_run_the_memory_in_two_phases():
    root = Path(__file__).parents[1] / "configs"
    for name in ("supervised/maum_sysu", "supervised/maum_regdb", "quickstart/maum_synth"):
        c = load_config(root / f"{name}.yaml").method
        assert c.memory_size > 1 and c.uni_start_epoch > 0, name


def test_keep_fraction_subsamples_one_modality_per_identity(sysu_root):
    from collections import Counter

    from vireid.data.datasets import build_dataset
    from vireid.data.imbalance import keep_fraction
    from vireid.data.records import Modality

    cfg = load_config(INSTANT, [f"data.dataset.root={sysu_root}"])
    train = build_dataset(cfg.data.dataset).train
    kept = keep_fraction(train, "infrared", 0.3, seed=0)
    count = Counter((s.pid, s.modality) for s in train)
    after = Counter((s.pid, s.modality) for s in kept)
    for (pid, mod), n in count.items():
        if mod is Modality.INFRARED:
            assert after[pid, mod] == max(1, round(0.3 * n))
        else:
            assert after[pid, mod] == n
    assert set(kept) <= set(train) and kept == keep_fraction(train, "ir", 0.3, seed=0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        keep_fraction(train, "infrared", 0.0)
    with pytest.raises(Exception, match="data.keep_fraction.fraction"):
        load_config(
            INSTANT, ["data.keep_fraction.modality=infrared", "data.keep_fraction.fraction=2"]
        )
    with pytest.raises(Exception, match="data.keep_fraction.modality"):
        load_config(
            INSTANT, ["data.keep_fraction.modality=rgbd", "data.keep_fraction.fraction=0.5"]
        )


def test_maum_trains_through_the_cli(sysu_root, tmp_path):
    out = tmp_path / "run"
    args = ["train", str(INSTANT), *run_overrides(sysu_root, out, tmp_path / "c")]
    args += ["method.name=maum", "method.memory_size=2", "method.uni_start_epoch=1"]
    args += ["data.keep_fraction.modality=infrared", "data.keep_fraction.fraction=0.5"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["terms"] == ["ms", "triplet"] and rows[1]["terms"] == ["ms", "triplet", "uni"]
    assert (out / "results.json").is_file()


def test_maum_resumes_exactly_with_its_proxy_bank(sysu_root, tmp_path):
    """The bank is a buffer: a run stopped after epoch 1 and resumed ends with the
    uninterrupted run's weights, proxies and bank, bit for bit."""
    over = ("method.name=maum", "method.memory_size=3", "method.uni_start_epoch=0")
    a, _, b = straight_and_resumed(INSTANT, sysu_root, tmp_path, 2, 1, *over)
    a, b = a["model"], b["model"]
    assert {"proxies", "bank", "bank_writes"} <= set(a) and a["bank_writes"].sum() > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_switched_off_term_is_not_reported_as_active():
    """The effects table reads a run's active terms from the step outputs: with
    ``uni_weight: 0`` L_Uni must not appear, whatever the phase."""
    method, _ = _method(uni_weight=0.0, uni_start_epoch=0)
    out = method.training_step(_batch())
    assert "uni" not in out
    assert float(out["loss"].detach()) == pytest.approx(float(out["ms"] + out["triplet"]), rel=1e-6)
