"""Image transforms on torchvision v2, including CAJ's channel augmentations
(Ye et al., ICCV 2021; mangye16/Cross-Modal-Re-ID-baseline ``ICCV21_CAJ/ChannelAug.py``).

The channel transforms act on normalised (3, H, W) tensors, after ``Normalize``, exactly
where CAJ applies them, and draw from torch's RNG so a seeded run repeats.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# CAJ's ChannelRandomErasing fills erased boxes with these constants (CIFAR means).
CAJ_ERASE_VALUE = [0.4914, 0.4822, 0.4465]


class ChannelExchange(v2.Transform):
    """Replicate one random channel over all three (CAJ ``ChannelExchange(gray=2)``: the
    index is drawn from {0, 1, 2}, so the grey branch of the original is unreachable)."""

    def __init__(self, gray: int = 2) -> None:
        super().__init__()
        self.gray = gray

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        idx = int(torch.randint(0, self.gray + 1, ()).item())
        if idx <= 2:
            return img[idx : idx + 1].expand_as(img).clone()
        return _grey(img)


class ChannelAdaptiveGray(v2.Transform):
    """CAJ ``ChannelAdapGray``: with probability 3/4 replicate a random channel, otherwise
    convert to grey with probability ``p`` (close to a no-op on near-grey IR images)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        idx = int(torch.randint(0, 4, ()).item())
        if idx <= 2:
            return img[idx : idx + 1].expand_as(img).clone()
        if torch.rand(()) < self.p:
            return _grey(img)
        return img


def _grey(img: torch.Tensor) -> torch.Tensor:
    g = 0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    return g.expand_as(img).clone()


def channel_random_erasing(p: float, draw: str = "torchvision") -> v2.Transform:
    """CAJ ``ChannelRandomErasing``: area 2–40 %, aspect 0.3–3.33, fixed per-channel fill.
    ``draw``: ``torchvision`` = ``v2.RandomErasing`` (log-uniform aspect, 10 tries);
    ``caj`` = CAJ's own draw (``CajErasing``)."""
    if draw == "caj":
        return CajErasing(p)
    if draw != "torchvision":
        raise ValueError(f"erasing draw {draw!r}: expected torchvision or caj")
    return v2.RandomErasing(p=p, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3), value=CAJ_ERASE_VALUE)


class CajErasing(v2.Transform):
    """CAJ ``ChannelRandomErasing`` as its code draws it: with probability ``p``, up to 100
    tries of an area uniform in [2 %, 40 %] of the image and an aspect ratio uniform in
    [0.3, 1/0.3] (torchvision draws it log-uniformly and tries 10 times), the first box
    strictly inside the image filled with ``CAJ_ERASE_VALUE`` per channel."""

    def __init__(self, p: float = 0.5, sl: float = 0.02, sh: float = 0.4, r1: float = 0.3):
        super().__init__()
        self.p, self.sl, self.sh, self.r1 = p, sl, sh, r1

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if torch.rand(()) >= self.p:
            return img
        _, height, width = img.shape
        for _ in range(100):
            area = float(torch.empty(()).uniform_(self.sl, self.sh)) * height * width
            aspect = float(torch.empty(()).uniform_(self.r1, 1 / self.r1))
            h, w = round((area * aspect) ** 0.5), round((area / aspect) ** 0.5)
            if w < width and h < height:
                y = int(torch.randint(0, height - h + 1, ()))
                x = int(torch.randint(0, width - w + 1, ()))
                img = img.clone()
                img[:, y : y + h, x : x + w] = torch.tensor(CAJ_ERASE_VALUE)[:, None, None]
                return img
        return img


def _base(height: int, width: int, pad: int, flip: float) -> list:
    ops: list = [v2.ToImage(), v2.Resize((height, width), antialias=True)]
    if pad:
        ops += [v2.Pad(pad), v2.RandomCrop((height, width))]
    if flip:
        ops.append(v2.RandomHorizontalFlip(flip))
    return [*ops, v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def build_train_transforms(
    height: int,
    width: int,
    *,
    pad: int = 10,
    flip: float = 0.5,
    random_erasing: float = 0.0,
    channel_erasing: float = 0.0,
    erasing_draw: str = "torchvision",
    channel_exchange: bool = False,
    adaptive_gray: float = 0.0,
) -> dict[str, v2.Compose | None]:
    """Transforms per stream: ``visible``, ``visible2`` (CAJ's channel-exchanged second
    view, or None) and ``infrared``. Input: PIL image or (H, W, 3) uint8 array."""
    tail: list = []
    if random_erasing:
        tail.append(v2.RandomErasing(p=random_erasing, value=0))
    if channel_erasing:
        tail.append(channel_random_erasing(channel_erasing, erasing_draw))
    base = _base(height, width, pad, flip)
    vis = v2.Compose(base + tail)
    vis2 = v2.Compose([*base, *tail, ChannelExchange(2)]) if channel_exchange else None
    ir_tail = tail + ([ChannelAdaptiveGray(adaptive_gray)] if adaptive_gray else [])
    return {"visible": vis, "visible2": vis2, "infrared": v2.Compose(base + ir_tail)}


def build_test_transform(height: int, width: int) -> v2.Compose:
    return v2.Compose(_base(height, width, pad=0, flip=0.0))
