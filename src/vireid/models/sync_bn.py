"""Batch norm over the whole DDP batch (``train.sync_bn``).

Under DDP each rank forwards its share of the batch, so plain BatchNorm normalises with that
share's statistics: a different network from the one-process recipe. ``convert_sync_bn``
replaces every BatchNorm by ``SyncBatchNorm``, whose statistics are the global batch's.
On GPUs that is torch's ``nn.SyncBatchNorm``; torch's runs on GPUs only (and DDP refuses
it on CPU modules), so a CPU model gets ``CPUSyncBatchNorm``, which computes the same
statistics with a differentiable all-reduce of per-channel sums (float64): a CPU DDP run
can then be checked against one process. Without a process group both are plain BatchNorm.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over every rank's rows (any input of shape (N, C, ...))."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sync = (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        )
        return self._cpu_forward(x) if sync else super().forward(x)

    def _cpu_forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        x64 = x.double()
        local = torch.cat([x64.sum(dims), (x64 * x64).sum(dims), x64.new_full((1,), x.numel() / c)])
        total = all_reduce(local)  # backward: every rank's gradient summed (as the forward)
        count = total[-1]
        mean = total[:c] / count
        var = total[c : 2 * c] / count - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked
                unbiased = var * count / max(count - 1, 1)
                self.running_mean.mul_(1 - m).add_(mean.to(x.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(x.dtype), alpha=m)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_bn(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm replaced by a synchronised one: torch's
    ``SyncBatchNorm`` for a model on a GPU, ``CPUSyncBatchNorm`` otherwise (same
    parameters, buffers and state-dict keys: checkpoints load either way)."""
    first = next(module.parameters(), None)
    if first is not None and first.device.type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, CPUSyncBatchNorm
    ):
        out = CPUSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert_cpu(child))
    return out
