"""Instance-level contrastive loss against an instance memory (ECUL's instance level,
vireid's reading: docs/methods/ecul.md).

For a sample i with selected positives P_i (``select_instances``), against the memory
bank M of all training instances (L2-normalised, momentum-updated):

    L_i = −log Σ_{p ∈ P_i} exp(f_i·M_p / τ) / Σ_{k ∈ P_i ∪ N_i} exp(f_i·M_k / τ)

N_i = the instances outside i's joint cluster: members of the cluster that were not
selected (and i itself) are left out of the denominator rather than pushed away, since
the cluster-level losses pull them together.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def instance_nce(
    feats: torch.Tensor,
    index: torch.Tensor,
    memory: torch.Tensor,
    positives: torch.Tensor,
    joint: torch.Tensor,
    temp: float = 0.05,
) -> torch.Tensor:
    """Mean L_i over the samples that have a positive (0 when none has).

    ``feats`` (B, D), ``index`` (B,) the samples' rows in ``memory`` (N, D, normalised),
    ``positives`` (N, W) −1-padded instance indices, ``joint`` (N,) joint-cluster labels.
    """
    pos = positives[index]
    has = (pos >= 0).any(1)
    if not has.any():
        return feats.new_zeros(())
    pos, idx = pos[has], index[has]
    logits = F.normalize(feats[has], dim=1) @ memory.T / temp  # (b, N)
    n = memory.shape[0]
    pos_mask = torch.zeros(len(idx), n + 1, dtype=torch.bool, device=logits.device)
    pos_mask.scatter_(1, torch.where(pos >= 0, pos, n), True)  # padding → spare column n
    pos_mask = pos_mask[:, :n]
    outside = joint[idx][:, None] != joint[None, :]
    neg_inf = torch.finfo(logits.dtype).min
    num = torch.logsumexp(logits.masked_fill(~pos_mask, neg_inf), 1)
    den = torch.logsumexp(logits.masked_fill(~(pos_mask | outside), neg_inf), 1)
    return (den - num).mean()
