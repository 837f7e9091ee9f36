"""Train the stand-in backbone: identity classification of the visible-only population.

A plain single-stream ResNet (the torchvision topology, narrow when ``width`` < 1) with an
identity classifier, trained like an ImageNet model (SGD with Nesterov momentum, cosine
decay, label smoothing, random crops and flips), so its weights load wherever ImageNet
weights do: torchvision key names, ``fc`` dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..models.two_stream import _scaled_resnet
from ..utils.progress import progress_bar
from .population import render_population
from .spec import PretrainSpec

LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def _augment(x: torch.Tensor, gen: torch.Generator, pad: int) -> torch.Tensor:
    """Per-sample random crop from a reflect-padded copy, and a horizontal flip."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    out[flip] = out[flip].flip(-1)
    return out


def pretrain_backbone(
    spec: PretrainSpec, log: Callable[[str], None] = lambda s: None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Returns (backbone state dict with torchvision keys and no ``fc``, summary)."""
    t0 = time.perf_counter()
    torch.manual_seed(spec.seed)
    images, labels = render_population(spec.population(), spec.images_per_id)
    log(f"rendered {len(images)} visible images of {spec.ids} identities")
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2)  # uint8, normalised per batch
    y_all = torch.from_numpy(labels)
    net = _scaled_resnet(spec.arch, spec.width)
    net.avgpool = nn.AdaptiveAvgPool2d(1)
    net.fc = nn.Linear(_feat_dim(net), spec.ids)
    decay, no_decay = [], []
    for p in net.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": spec.weight_decay},
            {"params": no_decay, "weight_decay": 0},
        ],
        lr=spec.lr,
        momentum=0.9,
        nesterov=True,
    )
    steps_per_epoch = max(1, len(x_all) // spec.batch_size)
    total = steps_per_epoch * spec.epochs
    gen = torch.Generator().manual_seed(spec.seed)
    pad = max(2, spec.height // 16)
    step, correct, seen = 0, 0, 0
    net.train()
    for epoch in range(spec.epochs):
        order = torch.randperm(len(x_all), generator=gen)
        correct = seen = 0
        with progress_bar(f"pretraining epoch {epoch + 1}/{spec.epochs}", steps_per_epoch) as adv:
            for b in range(steps_per_epoch):
                idx = order[b * spec.batch_size : (b + 1) * spec.batch_size]
                x = x_all[idx].float() / 255
                grey = torch.rand(len(x), generator=gen) < spec.grayscale
                x[grey] = (x[grey] * LUMA).sum(1, keepdim=True).expand(-1, 3, -1, -1)
                swap = torch.rand(len(x), generator=gen) < spec.hue
                if swap.any():
                    perm = torch.argsort(torch.rand(int(swap.sum()), 3, generator=gen), dim=1)
                    x[swap] = torch.gather(x[swap], 1, perm[:, :, None, None].expand_as(x[swap]))
                x, y = _augment((x - mean) / std, gen, pad), y_all[idx]
                for g in opt.param_groups:
                    g["lr"] = spec.lr * 0.5 * (1 + math.cos(math.pi * step / total))
                logits = net(x)
                loss = F.cross_entropy(logits, y, label_smoothing=spec.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                adv(1)
        log(
            f"epoch {epoch + 1}/{spec.epochs}: loss {loss.item():.3f}, "
            f"train acc {correct / seen:.3f}"
        )
    state = {k: v.detach().clone() for k, v in net.state_dict().items() if not k.startswith("fc.")}
    summary = {
        "spec": spec.key(),
        "train_accuracy": correct / max(seen, 1),
        "images": len(x_all),
        "steps": step,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return state, summary


def _feat_dim(net: nn.Module) -> int:
    last = net.layer4[-1]
    return (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features
