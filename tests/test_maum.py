"""MAUM: cosine-proxy losses against naive loops, the direction of the unidirectional
terms (infrared → visible proxies and the reverse), stop-gradient, the two phases, the
proxy memory (per-epoch and per-update stores, hardest-copy and averaged forms) reaching
the loss, the shared-proxy baseline, the recipes, the modality-imbalance data option (also
wired into a run), and instant CLI runs."""

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
    method, _ = _method(memory_size=3, uni_start_epoch=0, memory_store="update")
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
    """``memory_store: update``: after a step, only the identities of the batch (per
    modality) get a new copy, the copy is their proxy from before that step (so no stored
    copy equals the current proxy), successive copies differ, and reference set j holds
    every identity's (j + 1)-th newest copy."""
    method, _ = _method(memory_size=3, uni_start_epoch=0, memory_store="update")
    opt = torch.optim.SGD([method.proxies], lr=1.0)
    batch = {**_batch(), "labels": torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])}
    before = []
    for _ in range(4):
        before.append(method.proxies.detach().clone())
        opt.zero_grad()
        method.training_step(batch)["loss"].backward()
        opt.step()
        method.after_optimizer_step()
    w = method.bank_writes
    assert w[0].tolist() == [4, 4, 0, 0, 0, 0] and w[1].tolist() == [0, 0, 4, 4, 0, 0]
    # ring of 2 slots per identity: the third and fourth copies overwrote slots 0 and 1
    assert torch.equal(method.bank[0, 0, :2], before[2][0, :2])
    assert torch.equal(method.bank[1, 0, :2], before[3][0, :2])
    assert torch.equal(method.bank[1, 1, 2:4], before[3][1, 2:4])
    assert not torch.equal(method.bank[0, 0, :2], method.bank[1, 0, :2])
    for j in range(2):  # the newest copy is one positive update behind the current proxy
        assert not torch.allclose(method.bank[j, 0, :2], method.proxies[0, :2].detach())
    assert method.bank[:, 0, 2:].abs().sum() == 0 and method.bank[:, 1, :2].abs().sum() == 0
    refs = method.references(0)  # newest first; no copies yet: the current proxy
    assert len(refs) == 3
    assert torch.equal(refs[1][:2], before[3][0, :2]) and torch.equal(refs[2][:2], before[2][0, :2])
    assert torch.equal(refs[1][2:], method.proxies[0, 2:].detach())


def test_epoch_store_keeps_the_proxies_of_the_last_epochs():
    """``memory_store: epoch`` (default): at the start of every epoch after the first, the
    proxies of every identity are stored once; reference set j holds the proxies of j
    epochs before the current epoch's start (one age per set)."""
    method, cfg = _method(memory_size=3, uni_start_epoch=0)
    assert cfg.method.memory_store == "epoch"
    opt = torch.optim.SGD([method.proxies], lr=1.0)
    starts = {}
    for epoch in range(4):
        method.set_epoch(epoch)
        method.set_epoch(epoch)  # called again (e.g. after a resume): nothing new
        starts[epoch] = method.proxies.detach().clone()
        opt.zero_grad()
        method.training_step(_batch())["loss"].backward()
        opt.step()
        method.after_optimizer_step()
    assert method.bank_writes.unique().tolist() == [3]  # epochs 1, 2, 3; not epoch 0
    for m in (0, 1):
        refs = method.references(m)
        assert torch.equal(refs[1], starts[3][m]) and torch.equal(refs[2], starts[2][m])
        assert not torch.equal(refs[0], refs[1])  # the current proxies moved since


def test_epoch_store_every_k_epochs_spaces_the_sets():
    """``memory_every: 2``: a snapshot only at even epoch starts, so set j is the proxies
    of 2·j epochs back (the default, 1, is the test above)."""
    method, _ = _method(memory_size=3, uni_start_epoch=0, memory_every=2)
    opt = torch.optim.SGD([method.proxies], lr=1.0)
    starts = {}
    for epoch in range(6):
        method.set_epoch(epoch)
        starts[epoch] = method.proxies.detach().clone()
        opt.zero_grad()
        method.training_step(_batch())["loss"].backward()
        opt.step()
    assert method.bank_writes.unique().tolist() == [2]  # epochs 2 and 4
    refs = method.references(0)
    assert torch.equal(refs[1], starts[4][0]) and torch.equal(refs[2], starts[2][0])


def _naive_hard_ce(f, y, sets, temp):
    """Per feature: the least similar copy of its identity, the most similar copy of
    every other identity, one softmax."""
    total = 0.0
    for i in range(len(f)):
        fi = f[i] / np.linalg.norm(f[i])
        logits = []
        for c in range(sets[0].shape[0]):
            cos = [fi @ (s[c] / np.linalg.norm(s[c])) for s in sets]
            logits.append((min(cos) if c == y[i] else max(cos)) / temp)
        logits = np.array(logits)
        total += -logits[y[i]] + np.log(np.sum(np.exp(logits)))
    return total / len(f)


def _naive_joint_ce(f, y, sets, temp):
    """Per feature: one softmax over every copy of every identity, the S copies of its own
    identity all counted as the target."""
    total = 0.0
    for i in range(len(f)):
        fi = f[i] / np.linalg.norm(f[i])
        logits = np.array(
            [[fi @ (s[c] / np.linalg.norm(s[c])) / temp for c in range(len(s))] for s in sets]
        )
        total += -np.log(np.exp(logits[:, y[i]]).sum() / np.exp(logits).sum())
    return total / len(f)


NAIVE_ONE_SOFTMAX = {"hard": _naive_hard_ce, "joint": _naive_joint_ce}


@pytest.mark.parametrize("reduce", ["hard", "mean", "joint"])
def test_stored_copies_reach_the_loss_in_training_step(reduce):
    method, cfg = _method(
        memory_size=3, uni_start_epoch=0, ms_weight=0.0, triplet_weight=0.0, memory_reduce=reduce
    )
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
        if reduce == "mean":
            expect += np.mean([naive_proxy_ce(f[mod_f], y[mod_f], s, t) for s in sets])
        else:
            expect += NAIVE_ONE_SOFTMAX[reduce](f[mod_f], y[mod_f], sets, t)
    assert float(out["uni"]) == pytest.approx(expect, rel=1e-5)
    assert float(out["loss"].detach()) == pytest.approx(expect, rel=1e-5)


def test_memory_diagnostics_say_how_much_the_memory_adds():
    """``mem_angle`` / ``mem_grad_cos``: 0° and 1 when the stored copies equal the current
    proxies; with copies 20° away, the angle is 20° and the gradient turns."""
    method, _ = _method(memory_size=2, uni_start_epoch=0)
    with torch.no_grad():
        method.bank[0] = method.proxies
        method.bank_writes.fill_(1)
    out = method.training_step(_batch())
    assert float(out["mem_angle"]) == pytest.approx(0.0, abs=0.1)
    assert float(out["mem_grad_cos"]) == pytest.approx(1.0, abs=1e-6)
    with torch.no_grad():  # rotate every copy by 20° in a random plane
        w = torch.nn.functional.normalize(method.proxies, dim=-1)
        r = torch.randn(w.shape, generator=torch.Generator().manual_seed(2))
        r = torch.nn.functional.normalize(r - (r * w).sum(-1, keepdim=True) * w, dim=-1)
        a = np.deg2rad(20.0)
        method.bank[0] = np.cos(a) * w + np.sin(a) * r
    out = method.training_step(_batch())
    assert float(out["mem_angle"]) == pytest.approx(20.0, abs=0.1)
    assert float(out["mem_grad_cos"]) < 0.99
    # identities without a copy fall back to their current proxy: not counted as 0°
    with torch.no_grad():
        method.bank_writes[:, 3:] = 0
    assert float(method.training_step(_batch())["mem_angle"]) == pytest.approx(20.0, abs=0.1)


def test_recipes_run_the_memory_in_two_phases():
    root = Path(__file__).parents[1] / "configs"
    for name in ("supervised/maum_sysu", "supervised/maum_regdb", "quickstart/maum_synth"):
        c = load_config(root / f"{name}.yaml").method
        assert c.memory_size > 1 and c.uni_start_epoch > 0, name


def test_keep_fraction_rounds_exact_halves_up_for_any_decimal():
    """0.35 · 90 = 31.5 and 0.7 · 45 = 31.5 keep 32: the fraction as written, not its
    binary floating-point value (which puts f·n + ½ just below 32)."""
    from vireid.data.imbalance import keep_fraction
    from vireid.data.records import Modality, Sample

    for fraction, n in ((0.35, 90), (0.7, 45)):
        samples = [Sample(f"{i}.jpg", 1, 3, Modality.INFRARED) for i in range(n)]
        assert len(keep_fraction(samples, "infrared", fraction)) == 32, (fraction, n)


def test_shared_linear_classifier_trains_when_weighted():
    """``shared_ce_weight > 0`` turns AGW's linear classifier back on: its CE joins the loss
    with that weight and the classifier gets a gradient (0: frozen, no CE)."""
    off, _ = _method(triplet_weight=0.0)
    on, _ = _method(triplet_weight=0.0, shared_ce_weight=0.5)
    assert not off.model.classifier.weight.requires_grad
    out = on.training_step(_batch())
    assert float(out["ce"]) > 0
    want = float(out["ms"] + 0.5 * out["ce"])
    assert float(out["loss"].detach()) == pytest.approx(want, rel=1e-6)
    out["loss"].backward()
    assert on.model.classifier.weight.grad.abs().sum() > 0


def _counts(samples):
    from collections import Counter

    return Counter((s.pid, s.modality.name) for s in samples)


# keep_fraction keeps max(1, ⌊f·n + ½⌋) per identity (rounded half up, not Python's
# round-half-even): for f = 0.5, n = 5 keeps 3 and n = 7 keeps 4
HALF_UP = {0.5: {4: 2, 5: 3, 7: 4, 8: 4, 10: 5}, 0.3: {4: 1, 5: 2, 7: 2, 8: 2, 10: 3}}


@pytest.mark.parametrize("fraction", [0.5, 0.3])
def test_keep_fraction_subsamples_one_modality_per_identity(sysu_root, fraction):
    from vireid.data.datasets import build_dataset
    from vireid.data.imbalance import keep_fraction

    cfg = load_config(INSTANT, [f"data.dataset.root={sysu_root}"])
    train = build_dataset(cfg.data.dataset).train
    kept = keep_fraction(train, "infrared", fraction, seed=0)
    count, after = _counts(train), _counts(kept)
    assert 5 in {n for (_, mod), n in count.items() if mod == "INFRARED"}  # a x.5 case
    for (pid, mod), n in count.items():
        want = HALF_UP[fraction][n] if mod == "INFRARED" else n
        assert after[pid, mod] == want, (pid, mod, n)
    assert set(kept) <= set(train) and kept == keep_fraction(train, "ir", fraction, seed=0)
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


def test_a_run_trains_on_the_kept_fraction(sysu_root, tmp_path, monkeypatch):
    """``data.keep_fraction`` reaches training: the training data of a run holds, per
    identity, the kept count of infrared images and every visible one."""
    from vireid.data.datasets import build_dataset
    from vireid.engine import run as run_mod

    seen = []
    real = run_mod.build_train_data

    def spy(cfg, info, splits):
        seen.append(list(splits.train))
        return real(cfg, info, splits)

    monkeypatch.setattr(run_mod, "build_train_data", spy)
    over = [*run_overrides(sysu_root, tmp_path / "run", tmp_path / "c"), "train.epochs=1"]
    over += ["data.keep_fraction.modality=infrared", "data.keep_fraction.fraction=0.5"]
    cfg = load_config(INSTANT, [*over, "method.name=maum"])
    run_mod.train(cfg)
    full = _counts(build_dataset(cfg.data.dataset).train)
    after = _counts(seen[0])
    for (pid, mod), n in full.items():
        assert after[pid, mod] == (HALF_UP[0.5][n] if mod == "INFRARED" else n), (pid, mod)


def test_maum_trains_through_the_cli(sysu_root, tmp_path):
    out = tmp_path / "run"
    args = ["train", str(INSTANT), *run_overrides(sysu_root, out, tmp_path / "c")]
    args += ["method.name=maum", "method.memory_size=2", "method.uni_start_epoch=1"]
    args += ["data.keep_fraction.modality=infrared", "data.keep_fraction.fraction=0.5"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["terms"] == ["ms", "triplet"] and rows[1]["terms"] == ["ms", "triplet", "uni"]
    assert "mem_angle" not in rows[0] and 0 <= rows[1]["mem_angle"] < 180  # diagnostics
    assert -1 <= rows[1]["mem_grad_cos"] <= 1
    assert (out / "results.json").is_file()


@pytest.mark.parametrize("store", ["epoch", "update", "epoch-frozen"])
def test_maum_resumes_exactly_with_its_proxy_bank(sysu_root, tmp_path, store):
    """The bank is a buffer: a run stopped after epoch 1 and resumed ends with the
    uninterrupted run's weights, proxies and bank, bit for bit (the epoch store takes the
    resumed epoch's snapshot once)."""
    over = ("method.name=maum", "method.memory_size=3", "method.uni_start_epoch=0")
    over += (f"method.memory_store={store.split('-')[0]}",)
    if store.endswith("frozen"):  # the phase-1 proxies are a buffer too
        over += ("method.freeze_proxies=true",)
    a, _, b = straight_and_resumed(INSTANT, sysu_root, tmp_path, 2, 1, *over)
    a, b = a["model"], b["model"]
    assert {"proxies", "bank", "bank_writes", "bank_epoch"} <= set(a)
    assert a["bank_writes"].sum() > 0
    assert ("phase1_proxies" in a) == store.endswith("frozen")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_switched_off_term_is_not_reported_as_active():
    """The effects table reads a run's active terms from the step outputs: with
    ``uni_weight: 0`` L_Uni must not appear, whatever the phase."""
    method, _ = _method(uni_weight=0.0, uni_start_epoch=0)
    out = method.training_step(_batch())
    assert "uni" not in out
    assert float(out["loss"].detach()) == pytest.approx(float(out["ms"] + out["triplet"]), rel=1e-6)


def test_shared_proxy_baseline_trains_one_cosine_proxy_for_both_modalities():
    """``proxies: shared`` (the relay baseline): one proxy per identity, trained by both
    modalities' images at the same temperature; the loss is the cosine CE of each
    modality against the same proxies (numpy loop) + triplet."""
    method, cfg = _method(proxies="shared", uni_weight=0.0, triplet_weight=0.0)
    assert method.proxies.shape[0] == 1 and len(method.bank) == 0
    seen = _feats(method)
    batch = _batch()
    out = method.training_step(batch)
    f, y = seen[-1].numpy().astype(np.float64), batch["labels"].numpy()
    w = method.proxies.detach().numpy().astype(np.float64)[0]
    vis, ir = batch["modality"].numpy() == 0, batch["modality"].numpy() == 1
    t = cfg.method.temp
    expect = naive_proxy_ce(f[vis], y[vis], w, t) + naive_proxy_ce(f[ir], y[ir], w, t)
    assert float(out["loss"].detach()) == pytest.approx(expect, rel=1e-5)
    for modality in (0, 1):  # either modality alone trains the one proxy set
        method.zero_grad()
        only = {**batch, "modality": torch.full((8,), modality)}
        method.training_step(only)["loss"].backward()
        assert method.proxies.grad.abs().sum() > 0
    with pytest.raises(Exception, match="uni_weight=0"):
        load_config(INSTANT, ["method.name=maum", "method.proxies=shared"])


def test_frozen_proxies_stay_as_phase_one_left_them():
    """``freeze_proxies``: from ``uni_start_epoch`` on, optimiser steps (SGD with momentum
    and weight decay) leave the proxies where phase 1 left them while the network still
    trains; before it, and by default, the proxies move."""
    method, _ = _method(uni_start_epoch=1, freeze_proxies=True)
    params = [method.proxies, *method.model.parameters()]
    opt = torch.optim.SGD(
        [p for p in params if p.requires_grad], lr=0.1, momentum=0.9, weight_decay=5e-4
    )

    def epoch(e):
        method.set_epoch(e)
        start = method.proxies.detach().clone()
        for _ in range(2):
            opt.zero_grad()
            method.training_step(_batch())["loss"].backward()
            opt.step()
            method.after_optimizer_step()
        return start

    start = epoch(0)
    assert not torch.equal(method.proxies, start)  # phase 1: L_MS trains the proxies
    start, net = epoch(1), [p.detach().clone() for p in method.model.parameters()]
    epoch(2)
    assert torch.equal(method.proxies, start)
    assert any(not torch.equal(a, b) for a, b in zip(net, method.model.parameters()))
    default, _ = _method(uni_start_epoch=0)
    default.set_epoch(0)
    before = default.proxies.detach().clone()
    default.training_step(_batch())["loss"].backward()
    torch.optim.SGD([default.proxies], lr=0.1).step()
    default.after_optimizer_step()
    assert not torch.equal(default.proxies, before)
