"""``vireid export --format onnx``: onnxruntime gives the torch features (within 1e-4) for
any batch size and any mix of modalities."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vireid.cli import app
from vireid.data.records import Modality
from vireid.inference import FeatureExtractor
from vireid.search import collect_images

ort = pytest.importorskip("onnxruntime")
runner = CliRunner()


def _with_flip(checkpoint, out):
    """The checkpoint with ``eval.flip`` on (the graph then averages the mirror image)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    cfg = json.loads(state["config"])
    cfg["eval"]["flip"] = True
    state["config"] = json.dumps(cfg)
    torch.save(state, out)
    return out


@pytest.mark.parametrize("flip", [False, True])
def test_onnx_matches_torch_on_the_test_images(checkpoint, sysu_root, tmp_path, flip):
    ckpt = _with_flip(checkpoint, tmp_path / "flip.pt") if flip else checkpoint
    out = tmp_path / "model.onnx"
    r = runner.invoke(app, ["export", str(ckpt), str(out), "--format", "onnx"])
    assert r.exit_code == 0, r.output
    assert "onnxruntime vs torch: max |Δ|" in r.output
    fe = FeatureExtractor(ckpt, device="cpu")
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model_id"] == fe.model_id and meta["flip"] is flip
    assert meta["inputs"]["images"]["shape"] == ["batch", 3, fe.height, fe.width]
    assert meta["onnxruntime_max_abs_diff"] < 1e-4
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    vis = collect_images([sysu_root / "cam1"], "visible")[:5]
    ir = collect_images([sysu_root / "cam3"], "infrared")[:4]
    for samples in (vis[:1], ir[:1], [*vis, *ir], [ir[0], vis[0], ir[1], vis[1], vis[2]]):
        want = fe.embed_samples(samples)
        x = fe.preprocess([s.path for s in samples])
        m = np.array([int(s.modality is Modality.INFRARED) for s in samples], np.int64)
        (got,) = session.run(["feats"], {"images": x, "modality": m})
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-4


def test_export_formats_and_errors(checkpoint, tmp_path):
    r = runner.invoke(app, ["export", str(checkpoint), str(tmp_path / "w.bin")])
    assert r.exit_code == 2 and "expected a .safetensors output path" in r.output
    r = runner.invoke(app, ["export", str(checkpoint), "--format", "tflite"])
    assert r.exit_code == 2 and "--format 'tflite'" in r.output
    r = runner.invoke(app, ["export", str(checkpoint), str(tmp_path / "m.pt"), "--format", "onnx"])
    assert r.exit_code == 2 and "expected a .onnx output path" in r.output
