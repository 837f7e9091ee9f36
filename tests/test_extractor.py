"""``vireid.FeatureExtractor``: paths, PIL images and uint8 arrays give the features that
``vireid index`` writes for the same images."""

import numpy as np
import pytest
import torch
from PIL import Image

import vireid
from conftest import index_images
from vireid.evaluation.features import load_features, samples_from_features
from vireid.inference import FeatureExtractor


def test_paths_pil_and_arrays_equal_the_index_file(fe, checkpoint, gallery_dir, tmp_path):
    data = load_features(index_images(checkpoint, tmp_path / "ir.npz", gallery_dir / "ir"))
    paths = [str(p) for p in data["paths"]]
    want = data["feats"]
    assert vireid.FeatureExtractor is FeatureExtractor
    got = fe(paths, modality="infrared")
    assert got.dtype == np.float32 and got.shape == (len(paths), fe.dim)
    np.testing.assert_array_equal(got, want)  # bit for bit
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    pil = [Image.open(p) for p in paths]
    np.testing.assert_array_equal(fe(pil, modality="ir"), want)
    arrays = [np.asarray(im.convert("RGB")) for im in pil]
    np.testing.assert_array_equal(fe(arrays, modality="infrared"), want)
    np.testing.assert_array_equal(fe(np.stack(arrays), modality="infrared"), want)
    mixed = [paths[0], pil[1], arrays[2], *paths[3:]]
    np.testing.assert_array_equal(fe(mixed, modality="infrared"), want)
    # the modality routes the stem: the same pictures as visible are other features
    assert not np.allclose(fe(paths, modality="visible"), want, atol=1e-3)
    # one image in, one row out; another batching agrees to float rounding
    np.testing.assert_allclose(fe(paths[0], modality="infrared")[0], want[0], atol=1e-6)
    assert fe([], modality="visible").shape == (0, fe.dim)


def test_mixed_modality_samples_equal_the_index_file(fe, checkpoint, gallery_dir, tmp_path):
    data = load_features(index_images(checkpoint, tmp_path / "all.npz", gallery_dir))
    samples = samples_from_features(data)
    assert {s.modality.value for s in samples} == {"visible", "infrared"}
    np.testing.assert_array_equal(fe.embed_samples(samples), data["feats"])


def test_grey_arrays_and_bad_inputs(fe, gallery_dir):
    grey = np.asarray(Image.open(next((gallery_dir / "ir").rglob("*.jpg"))).convert("L"))
    rgb = np.repeat(grey[..., None], 3, axis=2)
    np.testing.assert_array_equal(fe(grey, "infrared"), fe(rgb, "infrared"))
    np.testing.assert_array_equal(fe(grey[..., None], "infrared"), fe(rgb, "infrared"))
    with pytest.raises(ValueError, match="dtype float32; expected uint8"):
        fe(rgb.astype(np.float32), "infrared")
    with pytest.raises(ValueError, match=r"shape \(64, 32, 4\)"):
        fe(np.zeros((64, 32, 4), np.uint8), "infrared")
    with pytest.raises(ValueError, match="cannot embed a int"):
        fe([3], "infrared")
    with pytest.raises(ValueError, match="unknown modality 'uv'"):
        fe(rgb, "uv")
    with pytest.raises(ValueError, match="does not exist"):
        fe("nope.jpg", "visible")


def test_batch_size_and_preprocess(checkpoint, gallery_dir, fe):
    paths = sorted(str(p) for p in (gallery_dir / "visible").rglob("*.jpg"))
    small = FeatureExtractor(checkpoint, device="cpu", batch_size=2)
    np.testing.assert_allclose(small(paths, "visible"), fe(paths, "visible"), atol=1e-6)
    with pytest.raises(ValueError, match="batch_size=0"):
        FeatureExtractor(checkpoint, batch_size=0)
    x = fe.preprocess(paths[:3])
    assert x.shape == (3, 3, fe.height, fe.width) and x.dtype == np.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_features_agree_with_the_cpu(checkpoint, gallery_dir, fe):
    paths = sorted(str(p) for p in (gallery_dir / "ir").rglob("*.jpg"))
    gpu = FeatureExtractor(checkpoint, device="cuda")
    np.testing.assert_allclose(gpu(paths, "infrared"), fe(paths, "infrared"), atol=1e-4)
