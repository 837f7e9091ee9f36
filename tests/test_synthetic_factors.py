"""The named factors of the synthetic generator each do what they say, and nothing else."""

from dataclasses import replace

import numpy as np
import pytest

from vireid.data.synthetic import SynthSpec
from vireid.data.synthetic.identity import (
    MATERIALS,
    SHIFTED_VIEWS,
    VISIBLE_VIEWS,
    sample_camera,
    sample_identity,
)
from vireid.data.synthetic.render import Canvas, render, sample_pose

SPEC = SynthSpec(ids=40)


def _people(spec, n=60):
    return [sample_identity(p, np.random.default_rng([0, 3, p]), spec) for p in range(n)]


def _fabrics(ident):
    return [(g.material, f) for g in (ident.top, ident.bottom) for f in (g.main, g.accent)]


def _related(material, color):
    m = MATERIALS[material]
    return np.clip(m.ir_base + m.ir_gain * np.dot(m.weights, color), 0.05, 1.0)


@pytest.mark.parametrize("gap", [0.0, 0.5, 1.0])
def test_modality_gap_is_the_fraction_of_fabrics_unrelated_to_their_colour(gap):
    fabrics = [f for p in _people(replace(SPEC, modality_gap=gap), 150) for f in _fabrics(p)]
    unrelated = np.mean([abs(f.ir - _related(m, f.color)) > 1e-6 for m, f in fabrics])
    assert abs(unrelated - gap) < 0.08


def test_infrared_relates_to_but_does_not_equal_colour():
    fabrics = [f for p in _people(replace(SPEC, modality_gap=0.0), 150) for f in _fabrics(p)]
    ir = np.array([f.ir for _, f in fabrics])
    luma = np.array([f.color @ [0.299, 0.587, 0.114] for _, f in fabrics])
    assert np.corrcoef(ir, luma)[0, 1] > 0.8  # related ...
    assert np.abs(ir - luma).mean() > 0.02  # ... but not equal (material responses)


def test_factors_change_only_what_they_name():
    a, b = (
        _people(replace(SPEC, modality_gap=0.0), 20),
        _people(replace(SPEC, modality_gap=1.0), 20),
    )
    for x, y in zip(a, b, strict=True):
        assert (x.height, x.build, x.hair_style, x.bag_kind) == (
            y.height,
            y.build,
            y.hair_style,
            y.bag_kind,
        )
        np.testing.assert_array_equal(x.top.main.color, y.top.main.color)


def test_view_diversity_zero_shows_the_same_garments_from_every_side():
    for p in _people(replace(SPEC, view_diversity=0.0)):
        assert p.top.front == p.top.back and p.bottom.front == p.bottom.back
        assert p.inner is None and p.bag_kind != "backpack"
    diverse = _people(replace(SPEC, view_diversity=1.0))
    assert np.mean([p.top.front != p.top.back for p in diverse]) > 0.9


def _cam(spec, camid, infrared):
    return sample_camera(camid, infrared, np.random.default_rng([0, 1, camid]), spec)


def test_view_shift_moves_the_infrared_cameras_view_mix():
    same = replace(SPEC, view_shift=0.0, camera_shift=0.0)
    np.testing.assert_allclose(_cam(same, 3, True).view_bias, VISIBLE_VIEWS)
    np.testing.assert_allclose(_cam(same, 1, False).view_bias, VISIBLE_VIEWS)
    shifted = replace(SPEC, view_shift=1.0, camera_shift=0.0)
    np.testing.assert_allclose(_cam(shifted, 3, True).view_bias, SHIFTED_VIEWS)
    np.testing.assert_allclose(_cam(shifted, 1, False).view_bias, VISIBLE_VIEWS)


def test_camera_shift_zero_makes_every_camera_see_the_same_conditions():
    flat = replace(SPEC, camera_shift=0.0)
    a, b = _cam(flat, 1, False), _cam(flat, 4, False)
    for field in (
        "bg_color",
        "bg_contrast",
        "light_gain",
        "light_tint",
        "blur",
        "noise",
        "distance",
    ):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field))
    strong = replace(SPEC, camera_shift=1.0)
    assert _cam(strong, 1, False).light_gain != _cam(strong, 4, False).light_gain


def test_modality_gap_zero_renders_infrared_close_to_the_grey_scene():
    spec = replace(SPEC, modality_gap=0.0, camera_shift=0.0, difficulty=0.0)
    canvas = Canvas(64, 32)
    ident = _people(spec, 1)[0]
    vis, ir = _cam(spec, 1, False), _cam(spec, 3, True)
    pose = sample_pose(np.random.default_rng(1), np.eye(3)[0], vis, 0.0)
    v = render(canvas, ident, vis, pose, np.random.default_rng(2)).astype(float)
    t = render(canvas, ident, ir, pose, np.random.default_rng(2)).astype(float)[..., 0]
    grey = v @ [0.299, 0.587, 0.114]
    assert np.corrcoef(grey.ravel(), t.ravel())[0, 1] > 0.7
