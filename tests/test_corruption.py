"""Corruptions: every type at every severity, seeded per image, visible images only."""

import shutil
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from vireid.data.cache import load_rgb
from vireid.data.records import Modality, Sample
from vireid.data.transforms import build_test_transform
from vireid.evaluation.corruption import (
    CORRUPTIONS,
    GROUPS,
    SEVERITIES,
    CorruptionPlan,
    Corruptor,
    corrupt_image,
    image_key,
    parse_corruptions,
    parse_severities,
    resize_like_test,
)
from vireid.evaluation.corruption.mce import corruption_errors
from vireid.evaluation.corruption.rain import rain

# corruptions without any randomness of their own (a seed cannot change them)
DETERMINISTIC = {
    "defocus_blur",
    "zoom_blur",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
    "gaussian_blur",
    "saturate",
}


@pytest.fixture(scope="module")
def tiny_image():
    """A 40 x 32 image with structure (edges, colours), the smallest the library takes."""
    rng = np.random.default_rng(0)
    img = np.zeros((40, 32, 3), np.uint8)
    img[:, :16] = (200, 60, 30)
    img[10:30, 8:24] = (20, 160, 220)
    return np.clip(img + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)


def test_catalogue_is_the_benchmarks_twenty():
    assert len(CORRUPTIONS) == 20 and len(set(CORRUPTIONS)) == 20
    assert CORRUPTIONS[14] == "rain"  # CIL-CrossModal's RandomCorruption order
    assert set(GROUPS) == set(CORRUPTIONS)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_type_runs_at_every_severity_on_a_tiny_image(name, tiny_image):
    before = tiny_image.copy()
    for s in SEVERITIES:
        out = corrupt_image(tiny_image, name, s, seed=11)
        assert out.shape == tiny_image.shape and out.dtype == np.uint8
        assert out.flags.writeable
        assert not np.array_equal(out, tiny_image), (name, s)
        assert np.array_equal(out, corrupt_image(tiny_image, name, s, seed=11)), (name, s)
        if name not in DETERMINISTIC:
            assert not np.array_equal(out, corrupt_image(tiny_image, name, s, seed=12))
    assert np.array_equal(tiny_image, before)  # the input is never written


def test_severity_orders_the_damage(tiny_image):
    """Noise grows with severity (a sanity check that severities are wired, not shuffled)."""
    dev = [
        np.abs(corrupt_image(tiny_image, "gaussian_noise", s, 3).astype(int) - tiny_image).mean()
        for s in SEVERITIES
    ]
    assert dev == sorted(dev) and dev[-1] > 2 * dev[0]


def test_library_call_leaves_the_global_numpy_stream_alone(tiny_image):
    np.random.seed(5)
    expected = np.random.random(3)
    np.random.seed(5)
    corrupt_image(tiny_image, "gaussian_noise", 3, 99)
    assert np.array_equal(np.random.random(3), expected)


def test_bad_inputs_name_what_was_expected(tiny_image):
    with pytest.raises(ValueError, match="at least 32x32"):
        corrupt_image(np.zeros((20, 20, 3), np.uint8), "fog", 1, 0)
    with pytest.raises(ValueError, match="severity"):
        corrupt_image(tiny_image, "fog", 6, 0)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_image(tiny_image, "hail", 1, 0)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_rain_recipe(severity):
    """Streak count from the rain type, a (2 + s) box blur, then the fixed darkening of
    (0.05 + 0.05 s) · 255 grey levels: flat areas away from streaks land on exactly that."""
    img = np.full((120, 60, 3), 150, np.uint8)
    out = rain(img, severity, np.random.default_rng(0))
    expected = int(np.float32(150) - np.float32((0.05 + 0.05 * severity) * 255))
    values, counts = np.unique(out, return_counts=True)
    assert values[counts.argmax()] == expected
    assert (out > expected).any()  # bright streaks survive the blur
    assert np.array_equal(out, rain(img, severity, np.random.default_rng(0)))


def test_parse_corruptions_and_severities():
    assert parse_corruptions("all") == CORRUPTIONS
    assert parse_corruptions("rain, fog") == ("fog", "rain")  # benchmark order
    with pytest.raises(ValueError, match="Did you mean 'glass_blur'"):
        parse_corruptions("glas_blur")
    assert parse_severities("1-5") == SEVERITIES
    assert parse_severities("3") == (3,)
    assert parse_severities("4,2") == (2, 4)
    for bad in ("0", "6", "2-1", "x", "1-9"):
        with pytest.raises(ValueError, match="--severity"):
            parse_severities(bad)


def _visible(root, n=12):
    files = sorted((root / "cam1").rglob("*.jpg")) + sorted((root / "cam4").rglob("*.jpg"))
    return [Sample(str(p), int(p.parent.name), 1, Modality.VISIBLE) for p in files[:n]]


def _apply(corruptor, samples):
    return [corruptor(s, load_rgb(s.path)) for s in samples]


def test_same_seed_same_pixels_in_any_order_and_any_mount(sysu_root, tmp_path):
    samples = _visible(sysu_root)
    plan = CorruptionPlan(seed=7)
    a = _apply(Corruptor(plan, 64, 32, str(sysu_root)), samples)
    b = _apply(Corruptor(CorruptionPlan(seed=7), 64, 32, str(sysu_root)), samples[::-1])[::-1]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # the dataset copied elsewhere: keys are relative to the root, so the same corruption
    moved = tmp_path / "elsewhere"
    shutil.copytree(sysu_root, moved)
    msamples = [replace(s, path=s.path.replace(str(sysu_root), str(moved))) for s in samples]
    m = _apply(Corruptor(plan, 64, 32, str(moved)), msamples)
    assert all(np.array_equal(x, y) for x, y in zip(a, m))
    other = _apply(Corruptor(CorruptionPlan(seed=8), 64, 32, str(sysu_root)), samples)
    assert sum(not np.array_equal(x, y) for x, y in zip(a, other)) >= len(samples) - 1


def test_mix_gives_each_image_its_sweep_pixels(sysu_root):
    samples = _visible(sysu_root, 6)
    plan = CorruptionPlan(seed=3)
    mix = Corruptor(plan, 64, 32, str(sysu_root))
    for s in samples:
        drawn = mix.assignment(s)
        fixed = Corruptor(plan, 64, 32, str(sysu_root), fixed=drawn)
        assert np.array_equal(mix(s, load_rgb(s.path)), fixed(s, load_rgb(s.path)))


def test_infrared_images_pass_through_as_the_clean_path_resizes_them(sysu_root):
    p = sorted((sysu_root / "cam3").rglob("*.jpg"))[0]
    s = Sample(str(p), int(p.parent.name), 3, Modality.INFRARED)
    c = Corruptor(CorruptionPlan(), 64, 32, str(sysu_root))
    assert c.assignment(s) is None
    assert np.array_equal(c(s, load_rgb(s.path)), resize_like_test(load_rgb(s.path), 64, 32))


def test_pre_resize_is_bit_identical_to_the_test_transform(sysu_root):
    """Corruption happens between the clean path's resize and normalisation, so an
    uncorrupted image through the hook gives exactly the clean tensor."""
    tf = build_test_transform(48, 24)
    for p in sorted((sysu_root / "cam1").rglob("*.jpg"))[:4]:
        img = load_rgb(str(p))
        assert torch.equal(tf(img), tf(resize_like_test(img, 48, 24)))


def test_draws_are_uniform_and_independent_of_the_type_order():
    plan = CorruptionPlan(seed=0)
    draws = [plan.draw(f"cam1/{i:04d}/0001.jpg") for i in range(4000)]
    types, sevs = Counter(d[0] for d in draws), Counter(d[1] for d in draws)
    assert set(types) == set(CORRUPTIONS) and set(sevs) == set(SEVERITIES)
    assert max(types.values()) < 1.35 * 200 and min(types.values()) > 0.65 * 200
    assert max(sevs.values()) < 1.15 * 800 and min(sevs.values()) > 0.85 * 800
    a, b = CorruptionPlan(("fog", "snow"), (2, 4)), CorruptionPlan(("snow", "fog"), (4, 2))
    assert [a.draw(str(i)) for i in range(50)] == [b.draw(str(i)) for i in range(50)]


def test_image_key(tmp_path):
    assert image_key(str(tmp_path / "cam1" / "0001" / "x.jpg"), tmp_path) == "cam1/0001/x.jpg"
    outside = tmp_path.parent / "y.jpg"
    assert image_key(str(outside), tmp_path) == outside.as_posix()


def test_mce_against_hand_computed_values():
    ref_clean, clean = {"mAP": 60.0}, {"mAP": 70.0}
    ref = {"fog": {"1": {"mAP": 50.0}, "2": {"mAP": 40.0}}}  # errors 50 + 60 = 110
    mine = {"fog": {"1": {"mAP": 67.5}, "2": {"mAP": 57.5}}}  # errors 32.5 + 42.5 = 75
    out = corruption_errors(mine, clean, ref, ref_clean, "mAP")
    assert out["CE"]["fog"] == pytest.approx(100 * 75 / 110)
    # relative: (2.5 + 12.5) / (10 + 20) = 0.5
    assert out["rCE"]["fog"] == pytest.approx(50.0)
    assert out["mCE"] == pytest.approx(out["CE"]["fog"])
    self_ref = corruption_errors(ref, ref_clean, ref, ref_clean, "mAP")
    assert self_ref["mCE"] == pytest.approx(100) and self_ref["relative_mCE"] == pytest.approx(100)
    # a reference that corruption did not hurt: relative CE undefined, left out
    flat = {"fog": {"1": {"mAP": 60.0}, "2": {"mAP": 60.0}}}
    assert corruption_errors(mine, clean, flat, ref_clean, "mAP")["rCE"]["fog"] is None


def test_loader_workers_do_not_change_the_corruption(sysu_root):
    """Each image's corruption is a function of its key: two worker processes (each with
    its own numpy state) give the batches one process gives."""
    from vireid.data.loader import ImageDataset, make_loader

    samples = _visible(sysu_root, 10)
    plan = CorruptionPlan(("gaussian_noise", "frost", "rain", "spatter"), seed=2)
    hook = Corruptor(plan, 64, 32, str(sysu_root))
    tf = build_test_transform(64, 32)

    def images(workers):
        ds = ImageDataset(samples, tf, corrupt=hook)
        loader = make_loader(ds, batch_size=3, workers=workers)
        return torch.cat([b["images"] for b in loader])

    assert torch.equal(images(0), images(2))
