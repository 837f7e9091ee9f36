"""MUN's per-step diagnostics (the review's D6 and defect 3): the layer scales and W_p
decay towards 0 under weight decay alone, so their mean and ‖W_p − I‖ change whether or not
they learn; the "_spread" and "_off" values are what only a gradient can move."""

import torch

from test_mun import _batch, _mun


def _steps(method, opt, n: int, zero_grad_loss: bool = False) -> dict:
    """``n`` optimiser steps; with ``zero_grad_loss`` every gradient is 0 (decay alone)."""
    method.train()
    for i in range(n):
        opt.zero_grad()
        out = method.training_step(_batch(i))
        if zero_grad_loss:
            for p in method.parameters():
                if p.requires_grad:
                    p.grad = torch.zeros_like(p)
        else:
            out["loss"].backward()
        opt.step()
    return {k: float(v) for k, v in method.training_step(_batch(n)).items() if k != "loss"}


def test_weight_decay_alone_moves_the_means_but_not_spread_or_off_diagonal():
    method, _ = _mun("method.ma_beta_start=1")
    opt = torch.optim.AdamW(method.parameters(), lr=0.1, weight_decay=0.5)
    out = _steps(method, opt, 3, zero_grad_loss=True)
    assert out["wp_v"] > 0.1 and out["iscale_v"] < 0.9 and out["cscale"] < 0.9
    for k in ("iscale_v", "iscale_r", "cscale"):
        assert out[f"{k}_spread"] < 1e-6, k
    for k in "vra":
        assert out[f"wp_{k}_off"] == 0.0, k


def test_l_ma_trains_w_p_and_the_losses_train_the_scales_without_decay():
    """With weight decay 0, L_ma's gradient moves each W_p^m off its (scaled) identity
    and the losses spread the layer scales over channels (Eq. 13's W_p are learnable)."""
    method, _ = _mun("method.ma_beta_start=1")
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3, weight_decay=0.0)
    out = _steps(method, opt, 2)
    for k in "vra":  # logged only for the W_p that L_ma trains
        assert out.get(f"wp_{k}_off", 0.0) > 1e-4, k
    for k in ("iscale_v", "iscale_r", "cscale"):
        assert out[f"{k}_spread"] > 1e-5, k
