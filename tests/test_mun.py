"""MUN against the paper's equations: the generator as Eqs. 1–9 print it (and the residual
reading as an option), L_ia (Eq. 12), the prototypes of Eqs. 13–14 and L_ma (Eqs. 15–16),
the total loss (Eq. 17), classifiers on the pooled features (Eq. 10), the recipes' network
and warm-up (§4.2), inference without the generator, and instant CLI runs."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from conftest import run_overrides, straight_and_resumed
from vireid.cli import app
from vireid.config import load_config
from vireid.engine.schedule import lr_factor
from vireid.losses.alignment import identity_alignment_loss, modality_alignment_loss
from vireid.methods import build_method
from vireid.models import build_model
from vireid.models.auxiliary import AuxiliaryGenerator, IntraModalityLearner

ROOT = Path(__file__).parents[1]
INSTANT = ROOT / "configs" / "tests" / "instant.yaml"


@pytest.mark.parametrize("size", [(24, 12), (16, 8), (18, 9)])
@pytest.mark.parametrize("upsample", ["transposed", "bilinear"])
@pytest.mark.parametrize("residual", [False, True])
def test_generator_keeps_the_map_shape(size, upsample, residual):
    gen = AuxiliaryGenerator(8, (2, 4, 6, 12), 0.5, upsample, residual)
    fv, fr = torch.randn(3, 8, *size), torch.randn(3, 8, *size)
    assert gen(fv, fr).shape == fv.shape


@pytest.mark.parametrize("upsample", ["transposed", "bilinear"])
def test_every_generator_parameter_gets_a_gradient(upsample):
    # DDP waits for the gradient of every parameter: a module the forward never uses
    # (the transposed convolutions in bilinear mode) would hang it
    gen = AuxiliaryGenerator(8, (2, 4, 6, 12), 0.5, upsample)
    gen(torch.randn(2, 8, 24, 12), torch.randn(2, 8, 24, 12)).square().sum().backward()
    missing = [n for n, p in gen.named_parameters() if p.grad is None]
    assert not missing, missing


def test_generator_rejects_an_unknown_upsample():
    with pytest.raises(ValueError, match="upsample 'nearest'"):
        AuxiliaryGenerator(8, (2,), 0.5, "nearest")


def _bn(x, bn):  # BatchNorm in training mode: the batch's statistics
    return F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)


def _iml_by_the_equations(f, m, scale):
    """Eqs. 1–5 with the module's weights, written out with functional ops."""
    c = f.shape[1]
    c1, c2 = f[:, : c // 2], f[:, c // 2 :]  # Eq. 1
    r = torch.cat(  # Eq. 2: D5×5 on F_c1, D7×7 on F_c2
        [
            F.conv2d(c1, m.dw5.weight, m.dw5.bias, padding=2, groups=c // 2),
            F.conv2d(c2, m.dw7.weight, m.dw7.bias, padding=3, groups=c // 2),
        ],
        dim=1,
    )
    r1 = F.conv2d(_bn(r, m.bn1), m.pw1.weight, m.pw1.bias)  # Eq. 3, C → 4C
    assert r1.shape[1] == 4 * c
    r2 = F.conv2d(F.relu(r1), m.dw3.weight, m.dw3.bias, padding=1, groups=4 * c) + r1  # Eq. 4
    return scale * F.conv2d(_bn(r2, m.bn2), m.pw2.weight, m.pw2.bias)  # Eq. 5, 4C → C


def _cml_by_the_equations(hv, hr, m, ratios, scale):
    """Eqs. 6–9: average pooling per ratio, one transposed convolution per ratio shared by
    both modalities, concatenation V scales then IR scales, BN, point-wise, C_scale."""
    maps = []
    for h in (hv, hr):
        for r, up in zip(ratios, m.up, strict=True):
            s = F.avg_pool2d(h, r)  # Eq. 6
            maps.append(F.conv_transpose2d(s, up.weight, up.bias, stride=r))  # Eq. 7
    s_hat = torch.cat(maps, dim=1)  # Eq. 8
    return scale * F.conv2d(_bn(s_hat, m.bn), m.pw.weight, m.pw.bias)  # Eq. 9


def test_default_generator_is_eqs_1_to_9():
    """The default generator is Eq. 9 of the two IMLs' Eq. 5 outputs: no copy of the input
    maps, and (0, 1] layer scales, so the output is not the visible/infrared average."""
    torch.manual_seed(0)
    ratios = (2, 4)
    gen = AuxiliaryGenerator(8, ratios)  # the defaults
    for s in (gen.iml_v.scale, gen.iml_r.scale, gen.cml.scale):
        assert float(s.gamma.detach().min()) > 0 and float(s.gamma.detach().max()) <= 1
        with torch.no_grad():  # distinct per-channel scales inside (0, 1]
            s.gamma.uniform_(0.2, 1.0)
    for bn in (gen.iml_v.bn1, gen.iml_v.bn2, gen.iml_r.bn1, gen.cml.bn):
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5), bn.bias.normal_()
    fv, fr = torch.randn(3, 8, 8, 4), torch.randn(3, 8, 8, 4)
    out = gen(fv, fr)
    hv = _iml_by_the_equations(fv, gen.iml_v, gen.iml_v.scale.gamma)
    hr = _iml_by_the_equations(fr, gen.iml_r, gen.iml_r.scale.gamma)
    expect = _cml_by_the_equations(hv, hr, gen.cml, ratios, gen.cml.scale.gamma)
    torch.testing.assert_close(out, expect, rtol=1e-5, atol=1e-5)
    assert (out - 0.5 * (fv + fr)).abs().mean() > 0.1


def test_residual_reading_starts_at_the_average_and_learns():
    gen = AuxiliaryGenerator(8, (2, 4), layer_scale_init=1e-6, residual=True)
    fv, fr = torch.randn(2, 8, 12, 6), torch.randn(2, 8, 12, 6)
    out = gen(fv, fr)
    torch.testing.assert_close(out, 0.5 * (fv + fr), rtol=0, atol=1e-4)
    out.square().sum().backward()
    for s in (gen.iml_v.scale, gen.iml_r.scale, gen.cml.scale):
        assert s.gamma.grad.abs().sum() > 0  # the scales receive gradient
    with pytest.raises(ValueError, match="halves"):
        IntraModalityLearner(7, 0.5)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        AuxiliaryGenerator(8, (2,), layer_scale_init=0.0)


def naive_ia(v, r, a, yv, yr, ya, margin, unit=False):
    """Eq. 12 with numpy: C = mean of an identity's pooled features; hardest positive centre
    over {v, r}, hardest negative over {v, r} and q ≠ i, hinged (triplet form), summed.
    ``unit``: every centre divided by its own length first (the recipes' option)."""
    v, r, a = (np.asarray(x, dtype=np.float64) for x in (v, r, a))
    yv, yr, ya = (np.asarray(y) for y in (yv, yr, ya))
    ids = sorted(set(ya) & set(yv) & set(yr))

    def centre(x, y, i):
        c = x[y == i].mean(0)
        return c / np.linalg.norm(c) if unit else c

    cen = {m: {i: centre(x, y, i) for i in ids} for m, x, y in (("v", v, yv), ("r", r, yr))}
    total = 0.0
    for i in ids:
        ca = centre(a, ya, i)
        pos = max(np.linalg.norm(ca - cen[m][i]) for m in "vr")
        neg = min(np.linalg.norm(ca - cen[m][q]) for m in "vr" for q in ids if q != i)
        total += max(0.0, margin + pos - neg)
    return total


def test_identity_alignment_is_eq_12():
    g = torch.Generator().manual_seed(0)
    v, r, a = (torch.rand(12, 5, generator=g, dtype=torch.float64) * 3 for _ in range(3))
    yv = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    yr, ya = yv.roll(2), yv.clone()
    for margin in (0.0, 0.55, 2.0):
        ours = identity_alignment_loss(v, r, a, yv, yr, ya, margin)  # default: raw centres
        assert float(ours) == pytest.approx(naive_ia(v, r, a, yv, yr, ya, margin), rel=1e-9)
    unit = identity_alignment_loss(v, r, a, yv, yr, ya, 0.55, normalize=True)
    assert float(unit) != pytest.approx(naive_ia(v, r, a, yv, yr, ya, 0.55), rel=1e-3)
    # each centre on its own unit sphere (a normalisation over identities, dim 0, differs)
    assert float(unit) == pytest.approx(naive_ia(v, r, a, yv, yr, ya, 0.55, unit=True), rel=1e-9)
    one = torch.zeros(2, dtype=torch.long)
    assert float(identity_alignment_loss(v[:2], r[:2], a[:2], one, one, one)) == 0.0


def test_raw_centre_alignment_rewards_shrinking_the_features():
    """Why the recipes normalise the centres: with raw centres Eq. 12 is α + s·(pos − neg)
    for features scaled by s, so while the hardest positive is farther than the nearest
    negative (as at initialisation) shrinking every feature lowers it — the runs collapse
    (docs/methods/mun.md). Normalised centres are scale-invariant."""
    g = torch.Generator().manual_seed(2)
    v, r, a = (torch.rand(12, 5, generator=g, dtype=torch.float64) for _ in range(3))
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    raw = [float(identity_alignment_loss(s * v, s * r, s * a, y, y, y)) for s in (1.0, 0.1)]
    assert raw[1] < raw[0]
    unit = [
        float(identity_alignment_loss(s * v, s * r, s * a, y, y, y, normalize=True))
        for s in (1.0, 0.1)
    ]
    assert unit[0] == pytest.approx(unit[1], rel=1e-9)


def naive_mmd2(x, y):
    """Eq. 16: ‖mean φ(x) − mean φ(y)‖²_H through the kernel trick, with the Gaussian kernel
    bank of the MMD loss (5 bandwidths bw·2^k, bw = mean off-diagonal squared distance of
    x ∪ y / 4)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    z = np.concatenate([x, y])
    n = len(z)
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    bw = d2.sum() / (n * n - n) / 4

    def k(p, q):
        return sum(math.exp(-((p - q) ** 2).sum() / (bw * 2**i)) for i in range(5))

    xx = sum(k(p, q) for p in x for q in x) / len(x) ** 2
    yy = sum(k(p, q) for p in y for q in y) / len(y) ** 2
    xy = sum(k(p, q) for p in x for q in y) / (len(x) * len(y))
    return xx + yy - 2 * xy


def naive_ma(tv, tr, ta, yv, yr, ya):
    """Eq. 15: (1/P) Σ_p [mmd(T^v_p, T^a_p) + mmd(T^a_p, T^r_p)]."""
    ids = sorted(set(np.asarray(ya)))
    terms = [
        naive_mmd2(tv[yv == p], ta[ya == p]) + naive_mmd2(ta[ya == p], tr[yr == p]) for p in ids
    ]
    return sum(terms) / len(ids)


def test_modality_alignment_is_eqs_15_16():
    g = torch.Generator().manual_seed(1)
    tv, tr, ta = (torch.randn(8, 4, generator=g, dtype=torch.float64) for _ in range(3))
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    ours = modality_alignment_loss(tv, tr, ta, y, y, y)
    assert float(ours) == pytest.approx(naive_ma(tv, tr, ta, y, y, y), rel=1e-9)


def _mun(*over, classes=4):
    cfg = load_config(INSTANT, ["method.name=mun", "method.pyramid_ratios=[2,4]", *over])
    torch.manual_seed(0)
    return build_method(cfg.method, build_model(cfg.model, num_classes=classes)), cfg


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    return {
        "images": torch.rand(8, 3, 64, 32, generator=g),
        "labels": torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]),
        "modality": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
    }


def _capture_pool(method):
    seen = []
    method.model.pool.register_forward_hook(lambda mod, i, o: seen.append(o.detach().float()))
    return seen


def test_prototypes_follow_eq_14_and_l_ma_uses_them():
    """Step 0 (Eq. 13): T = W_p Z; step 1 (Eq. 14): T = β W_p Z + (1 − β) T_prev with β of
    that epoch (linear from 1e-8 at the first epoch to 1 at the last); L_ma is Eq. 15 on
    these T, which the method carries to the next step and through its extra state."""
    method, _ = _mun()
    method.num_epochs = 3
    with torch.no_grad():
        for p in method.prototypes:
            p.weight.add_(0.1 * torch.randn_like(p.weight))
    seen = _capture_pool(method)
    y = _batch(0)["labels"]
    vis, ir = y.new_tensor([1, 1, 1, 1, 0, 0, 0, 0]).bool(), y.new_tensor([0] * 4 + [1] * 4).bool()

    def projected(z):
        w = [p.weight.detach() for p in method.prototypes]
        return {"v": z[:8][vis] @ w[0].T, "r": z[:8][ir] @ w[1].T, "a": z[8:] @ w[2].T}

    method.set_epoch(0)
    assert method.beta() == pytest.approx(1e-8)
    method.training_step(_batch(0))
    t0 = projected(seen[-1])
    for k in "vra":
        torch.testing.assert_close(method.last_prototypes[k], t0[k])
    method.set_epoch(1)
    beta = 1e-8 + (1 - 1e-8) * 0.5
    assert method.beta() == pytest.approx(beta)
    out = method.training_step(_batch(1))
    cur = projected(seen[-1])
    t1 = {k: beta * cur[k] + (1 - beta) * t0[k] for k in "vra"}
    for k in "vra":
        torch.testing.assert_close(method.last_prototypes[k], t1[k], rtol=1e-5, atol=1e-6)
    ya = y[4:]
    expect = naive_ma(t1["v"].numpy(), t1["r"].numpy(), t1["a"].numpy(), y[vis], y[ir], ya)
    assert float(out["ma"]) == pytest.approx(expect, rel=1e-4)
    method.set_epoch(2)
    assert method.beta() == pytest.approx(1.0)
    state = method.extra_state()
    fresh, _ = _mun()
    fresh.load_extra_state(state)
    for k in "vra":
        assert torch.equal(fresh.last_prototypes[k], method.last_prototypes[k])


@pytest.mark.parametrize("feature", ["feat", "pool"])
def test_total_loss_is_eq_17_with_classifiers_on_the_pooled_features(feature):
    """Eqs. 10–11 apply C_v, C_r to the GeM-pooled Z of the visible, infrared and auxiliary
    rows; by default a classifier is the BNNeck (batch statistics over every row it
    classifies) then a linear layer, ``pool`` is a bare linear on Z. Total = Eq. 17."""
    method, _ = _mun(f"method.classifier_feature={feature}")
    seen = _capture_pool(method)
    batch = _batch(0)
    out = method.training_step(batch)
    y, z = batch["labels"], seen[-1]
    if feature == "feat":
        bn = method.model.bottleneck
        z = F.batch_norm(z, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    cv, cr = method.classifiers
    lid = F.cross_entropy(cv(z[:4]), y[:4]) + F.cross_entropy(cr(z[4:8]), y[4:])  # Eq. 10
    assert float(out["id"]) == pytest.approx(float(lid.detach()), rel=1e-5)
    lidc = F.cross_entropy(cv(z[8:]), y[4:]) + F.cross_entropy(cr(z[8:]), y[4:])  # Eq. 11
    assert float(out["idc"]) == pytest.approx(float(lidc.detach()), rel=1e-5)
    parts = {k: float(out[k]) for k in ("id", "triplet", "idc", "ia", "ma")}
    total = parts["id"] + parts["triplet"] + 0.25 * parts["idc"] + 0.5 * parts["ia"]
    total += 0.008 * parts["ma"]  # γ, θ, σ = 0.25, 0.5, 0.008 (§4.2)
    assert float(out["loss"].detach()) == pytest.approx(total, rel=1e-5)
    # the BN weight trains only where a loss reads the BN feature
    assert method.model.bottleneck.weight.requires_grad == (feature == "feat")


@pytest.mark.parametrize("feature", ["pool", "feat"])
def test_bnneck_statistics_leave_the_auxiliary_rows_out(feature):
    """Evaluation normalises visible and infrared features with the BNNeck's running
    statistics: with bare linear classifiers on Z no loss reads the auxiliary rows' BN
    feature, so only the real rows update them; classifiers through the BNNeck (default)
    classify the auxiliary rows too, so the BN sees them."""
    method, _ = _mun(f"method.classifier_feature={feature}")
    method.train()
    bn = method.model.bottleneck
    bn.reset_running_stats()
    bn.momentum = 1.0  # running mean := this batch's mean
    pool = _capture_pool(method)
    method.training_step(_batch(0))
    rows = pool[-1] if feature == "feat" else pool[-1][:8]
    torch.testing.assert_close(bn.running_mean, rows.mean(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "over",
    [
        [],
        ["method.upsample=bilinear"],
        ["method.ia_weight=0", "method.ma_weight=0", "method.idc_weight=0"],
        [
            "method.auxiliary=false",
            "method.ia_weight=0",
            "method.ma_weight=0",
            "method.idc_weight=0",
        ],
        ["method.ida_weight=1", "method.ma_bridge=false"],
        ["method.ma_prototypes=false", "method.ia_feature=feat"],
    ],
)
def test_every_trainable_parameter_gets_a_gradient(over):
    """DDP's reducer waits for a gradient of every parameter that requires one: a step of
    the method (not only its generator) must reach them all, in each mode and ablation."""
    method, _ = _mun(*over)
    method.train()
    method.training_step(_batch(0))["loss"].backward()
    missing = [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing


def test_inference_ignores_the_generator():
    method, _ = _mun()
    method.eval()
    x, mod = _batch(0)["images"], _batch(0)["modality"]
    before = method.model.embed(x, mod)

    def refuse(*_):
        raise AssertionError("the generator ran at inference")

    handle = method.generator.register_forward_pre_hook(refuse)
    with torch.no_grad():
        for p in method.generator.parameters():
            p.normal_()
    torch.testing.assert_close(method.model.embed(x, mod), before, rtol=0, atol=0)
    handle.remove()


def test_recipes_follow_the_paper():
    """§4.2 / Fig. 2: ResNet-50 whose first stage (layer1) is duplicated per modality, no
    non-local blocks, GeM; warm-up from 1e-8 to 0.002 over 15 epochs, per step."""
    for name in ("mun_sysu", "mun_regdb"):
        cfg = load_config(ROOT / "configs" / "supervised" / f"{name}.yaml", [])
        m, t = cfg.model, cfg.train
        assert (m.arch, m.non_local, m.modality_specific, m.pooling) == (
            "resnet50",
            False,
            "layer1",
            "gem",
        )
        assert (t.optimizer, t.lr, t.weight_decay, t.epochs) == ("adamw", 0.002, 0.01, 90)
        assert (t.warmup_epochs, t.warmup_start_lr, t.milestones) == (15, 1e-8, [30, 60])
        c = cfg.method
        assert (c.residual, c.ia_normalize, c.classifier_feature) == (False, True, "feat")
        assert (c.idc_weight, c.ia_weight, c.ma_weight, c.ia_margin) == (0.25, 0.5, 0.008, 0.55)
        assert (c.ma_beta_start, c.ma_beta_end, c.pyramid_ratios) == (1e-8, 1.0, [2, 4, 6, 12])
    start = 1e-8 / 0.002
    assert lr_factor(0, 15, [30, 60], 0.1, start, 0.0) == pytest.approx(start)
    assert lr_factor(7, 15, [30, 60], 0.1, start, 0.5) == pytest.approx(start + (1 - start) / 2)
    assert lr_factor(15, 15, [30, 60], 0.1, start) == 1.0
    assert lr_factor(30, 15, [30, 60], 0.1, start) == pytest.approx(0.1)


def test_mun_refuses_unpaired_batches():
    method, _ = _mun()
    batch = {
        "images": torch.rand(4, 3, 64, 32),
        "labels": torch.tensor([0, 1, 1, 0]),  # infrared block in another identity order
        "modality": torch.tensor([0, 0, 1, 1]),
    }
    with pytest.raises(ValueError, match="same identity order"):
        method.training_step(batch)


def test_mun_trains_through_the_cli_with_a_per_step_warmup(sysu_root, tmp_path):
    out = tmp_path / "run"
    args = ["train", str(INSTANT), *run_overrides(sysu_root, out, tmp_path / "c")]
    args += ["method.name=mun", "train.optimizer=adamw", "train.lr=0.002"]
    args += ["model.modality_specific=layer1", "data.augment.channel_exchange=true"]
    args += ["train.warmup_epochs=2", "train.warmup_start_lr=1e-8"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(k in rows[-1] for k in ("id", "triplet", "idc", "ia", "ma", "acc"))
    assert (out / "results.json").is_file()
    # each epoch logs whether the layer scales and W_p move (diagnostics, not loss terms)
    # and how often L_ia's hinge is active
    watched = ("iscale_v", "iscale_r", "cscale", "wp_v", "wp_r", "wp_a")
    for k in watched:
        assert rows[0][k] != rows[1][k], k
        assert k not in rows[-1]["terms"]
    assert rows[0]["wp_v"] < rows[1]["wp_v"]  # identity init: ‖W_p − I‖ grows from 0
    assert 0 <= rows[-1]["ia_active"] <= 1


def test_warmup_ramps_per_step_from_the_start_lr():
    """§4.2: the lr rises from 1e-8 step by step over the warm-up epochs."""
    from types import SimpleNamespace

    from vireid.engine.hooks import LRScheduleHook

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    trainer = SimpleNamespace(epoch=0, optimizer=opt, iters_per_epoch=4, loader=None)
    hook = LRScheduleHook(0.002, 2, [30], 0.1, warmup_start_lr=1e-8)
    seen = []
    for epoch in range(3):
        trainer.epoch = epoch
        hook.before_epoch(trainer)
        for _ in range(4):
            seen.append(opt.param_groups[0]["lr"])
            hook.after_step(trainer, {})
    start = 1e-8
    expect = [start + (0.002 - start) * i / 8 for i in range(8)] + [0.002] * 4
    assert seen == pytest.approx(expect, rel=1e-9)


def test_mun_resumes_exactly_with_its_prototypes(sysu_root, tmp_path):
    """The carried prototypes [T]^{i−1} are in the checkpoint: a run stopped after epoch 1
    and resumed ends with the uninterrupted run's weights and prototypes, bit for bit
    (constant β = 0.5, so the schedule does not depend on the run's length)."""
    over = ("method.name=mun", "method.ma_beta_start=0.5", "method.ma_beta_end=0.5")
    a, mid, b = straight_and_resumed(INSTANT, sysu_root, tmp_path, 2, 1, *over)
    assert {"prototypes_v", "prototypes_r", "prototypes_a"} <= set(mid["extra"])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in ("prototypes_v", "prototypes_r", "prototypes_a"):
        assert torch.equal(a["extra"][k], b["extra"][k]), k
