import os

import numpy as np
import pytest
import torch

from conftest import write_image
from vireid.data.cache import build_cache, load_rgb
from vireid.data.datasets import DatasetError
from vireid.data.transforms import (
    ChannelAdaptiveGray,
    ChannelExchange,
    build_test_transform,
    build_train_transforms,
)


def test_channel_exchange_replicates_one_channel():
    torch.manual_seed(0)
    img = torch.randn(3, 8, 4)
    seen = set()
    for _ in range(30):
        out = ChannelExchange(2)(img)
        k = [c for c in range(3) if torch.equal(out[0], img[c])]
        assert k and torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
        seen.add(k[0])
    assert seen == {0, 1, 2}


def test_adaptive_gray_outputs():
    torch.manual_seed(1)
    img = torch.randn(3, 8, 4)
    grey = 0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    kinds = Counter()
    for _ in range(200):
        out = ChannelAdaptiveGray(1.0)(img)
        if torch.equal(out, img):
            kinds["same"] += 1
        elif torch.allclose(out[0], grey):
            kinds["grey"] += 1
        else:
            assert any(torch.equal(out[0], img[c]) for c in range(3))
            kinds["channel"] += 1
    assert kinds["same"] == 0 and 30 < kinds["grey"] < 80  # p=1: the 1/4 branch is grey


from collections import Counter  # noqa: E402


def test_train_and_test_transforms_shapes():
    arr = np.random.default_rng(0).integers(0, 255, (70, 40, 3), dtype=np.uint8)
    tf = build_train_transforms(
        64, 32, channel_exchange=True, channel_erasing=0.5, adaptive_gray=0.5
    )
    for k in ("visible", "visible2", "infrared"):
        assert tf[k](arr).shape == (3, 64, 32)
    assert build_train_transforms(64, 32)["visible2"] is None
    assert build_test_transform(64, 32)(arr).shape == (3, 64, 32)


def test_cache_builds_once_and_rebuilds_on_change(tmp_path):
    paths = [str(write_image(tmp_path / f"im{i}.jpg", i)) for i in range(5)]
    cache = tmp_path / "cache"
    a = build_cache(paths, 16, 8, cache)
    assert a.shape == (5, 16, 8, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a[2], np.asarray(load_rgb(paths[2]).resize((8, 16), 1)))
    files = list(cache.glob("*.npy"))
    assert len(files) == 1
    build_cache(paths, 16, 8, cache)
    assert list(cache.glob("*.npy")) == files  # reused
    build_cache(paths, 20, 8, cache)  # other size → new file
    os.utime(paths[0], ns=(1, 1))  # touched image → new key
    build_cache(paths, 16, 8, cache)
    assert len(list(cache.glob("*.npy"))) == 3


def test_interrupted_cache_leaves_no_file(tmp_path):
    good = str(write_image(tmp_path / "a.jpg"))
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DatasetError, match="b.jpg: cannot decode"):
        build_cache([good, str(bad)], 16, 8, tmp_path / "c")
    assert not list((tmp_path / "c").iterdir())
