"""Multi-kernel Gaussian MMD² (MMM ``loss.py::MMD_loss``, after Long et al., DAN).

Five Gaussian kernels with bandwidths ``base · mul^i`` (i = 0..4), ``base`` = mean pairwise
squared distance of the pooled samples / mul^(num // 2), computed without gradient as the
reference does. MMD² = mean k(X, X) + mean k(Y, Y) − 2·mean k(X, Y): equal to the
reference's ``mean(XX + YY − XY − YX)`` for equal sample counts, and defined for unequal
ones.
"""

from __future__ import annotations

import torch


def gaussian_kernels(
    x: torch.Tensor, y: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5
) -> torch.Tensor:
    total = torch.cat([x, y])
    d2 = torch.cdist(total, total).pow(2)
    n = len(total)
    bandwidth = d2.detach().sum() / max(n * n - n, 1)
    bandwidth = bandwidth / kernel_mul ** (kernel_num // 2)
    bandwidth = bandwidth.clamp_min(1e-12)
    return sum(torch.exp(-d2 / (bandwidth * kernel_mul**i)) for i in range(kernel_num))


def mmd2(
    x: torch.Tensor, y: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5
) -> torch.Tensor:
    """MMD² between samples ``x`` (n, D) and ``y`` (m, D)."""
    k = gaussian_kernels(x, y, kernel_mul, kernel_num)
    n = len(x)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


def inter_modality_mmd(
    feats: torch.Tensor,
    labels: torch.Tensor,
    is_infrared: torch.Tensor,
    second_view: torch.Tensor | None = None,
    form: str = "paper",
) -> torch.Tensor:
    """MMM's L_Inter over the identities present in both modalities of the batch.

    * ``paper``: mean over identities of ½ [MMD²(F_v, sg(F_r)) + MMD²(F_r, sg(F_v))], both
      visible views pooled as F_v — each side is pulled towards a frozen copy of the
      other, so the two cannot collapse onto each other.
    * ``official`` (``main.py``'s mutual distillation): per identity and per visible view k,
      MMD²(F_vk, sg(F_r)) + MMD²(F_r, sg(F_vk)), summed over views and directions, then
      averaged over identities — with two views 4× the paper form's scale.

    ``second_view`` (B,) marks the rows that are a visible image's second view."""
    if form not in ("paper", "official"):
        raise ValueError(f"inter form {form!r}: expected paper or official")
    view2 = torch.zeros_like(is_infrared) if second_view is None else second_view
    terms = []
    for y in torch.unique(labels[labels >= 0]):
        is_y = labels == y
        v, r = feats[is_y & ~is_infrared], feats[is_y & is_infrared]
        if not (len(v) and len(r)):
            continue
        if form == "paper":
            terms.append(0.5 * (mmd2(v, r.detach()) + mmd2(r, v.detach())))
            continue
        views = [feats[is_y & ~is_infrared & (view2 == k)] for k in (False, True)]
        terms.append(
            sum(mmd2(x, r.detach()) + mmd2(r, x.detach()) for x in views if len(x))  # type: ignore[arg-type]
        )
    if not terms:
        return feats.new_zeros(())
    return torch.stack(terms).mean()
