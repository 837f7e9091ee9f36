"""The synthetic stand-in for ImageNet weights: built once per settings, loads where
ImageNet weights load, and comes from a visible-only population."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vireid.cli import app
from vireid.models.two_stream import TwoStreamNet
from vireid.models.weights import WeightsError, load_pretrained, read_state_dict
from vireid.pretrain import PretrainSpec, ensure_weights, read_summary, weights_path
from vireid.pretrain import cache as cache_mod
from vireid.pretrain.population import render_population

TINY = PretrainSpec(
    width=0.125, height=32, image_width=16, ids=8, images_per_id=2, epochs=1, batch_size=4
)


def test_population_is_visible_only_and_labelled():
    images, labels = render_population(TINY.population(), 2)
    assert images.shape == (16, 32, 16, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.repeat(np.arange(8), 2))
    chroma = np.abs(images[..., 0].astype(int) - images[..., 2].astype(int)).mean()
    assert chroma > 5  # colour images, not grey infrared ones


def test_weights_are_cached_by_their_settings(tmp_path, monkeypatch):
    path = ensure_weights(TINY, root=tmp_path)
    assert path == weights_path(TINY, tmp_path) and path.is_file()
    summary = read_summary(path)
    assert summary["spec"]["ids"] == 8 and summary["steps"] == 4
    calls = []
    monkeypatch.setattr(cache_mod, "pretrain_backbone", lambda *a, **k: calls.append(a))
    assert ensure_weights(TINY, root=tmp_path) == path and not calls  # cached
    other = PretrainSpec(**{**TINY.__dict__, "seed": 1})
    assert weights_path(other, tmp_path) != path  # other settings, other file


def test_cache_key_follows_the_population_defaults(monkeypatch):
    """The stand-in's population takes SynthSpec's factor defaults; recalibrating them
    changes the weights, so it must change the file name (else a stale file is reused)."""
    from vireid.data.synthetic import SynthSpec

    before = weights_path(PretrainSpec()).name
    pop = PretrainSpec().population()
    recalibrated = SynthSpec(**{**pop.__dict__, "difficulty": pop.difficulty + 0.5})
    monkeypatch.setattr(PretrainSpec, "population", lambda self: recalibrated)
    assert weights_path(PretrainSpec()).name != before


def test_stand_in_loads_into_both_stems_like_imagenet_weights(tmp_path):
    path = ensure_weights(TINY, root=tmp_path)
    sd = read_state_dict(path)
    assert "conv1.weight" in sd and not any(k.startswith("fc.") for k in sd)
    net = TwoStreamNet("resnet18", 5, non_local=False, width=0.125)
    load_pretrained(net, path, "resnet18", 0.125)
    for s in (0, 1):
        torch.testing.assert_close(net.stems[s][0].weight, sd["conv1.weight"])
    torch.testing.assert_close(net.layers[3][1].conv2.weight, sd["layer4.1.conv2.weight"])
    wide = TwoStreamNet("resnet18", 5, non_local=False, width=0.25)
    with pytest.raises(WeightsError, match="vireid pretrain"):
        load_pretrained(wide, path, "resnet18", 0.25)


def test_model_pretrained_synthetic_resolves_to_the_stand_in(tmp_path, monkeypatch):
    seen = []

    def fake(spec, **kw):
        seen.append(spec)
        return ensure_weights(TINY, root=tmp_path)

    monkeypatch.setattr("vireid.pretrain.ensure_weights", fake)
    net = TwoStreamNet("resnet18", 5, non_local=False, width=0.125)
    load_pretrained(net, "synthetic", "resnet18", 0.125)
    assert (seen[0].arch, seen[0].width) == ("resnet18", 0.125)


def test_pretrain_cli_writes_a_weights_file(tmp_path):
    out = tmp_path / "w.safetensors"
    args = ["pretrain", "--width", "0.125", "--size", "32x16", "--ids", "8", "--images-per-id", "2"]
    r = CliRunner().invoke(app, [*args, "--epochs", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert read_summary(out)["spec"]["width"] == 0.125
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "w.pth")])
    assert r.exit_code == 2 and "safetensors" in r.output
