import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from vireid.cli import app
from vireid.clustering import cluster_labels as cluster_features
from vireid.clustering import cross_modality_ari

INSTANT = Path(__file__).parents[1] / "configs" / "tests" / "instant_usl.yaml"
runner = CliRunner()


def _train(root, out, *extra):
    return runner.invoke(
        app,
        [
            "train",
            str(INSTANT),
            f"data.dataset.root={root}",
            f"output_dir={out}",
            f"data.cache_dir={out.parent / 'c'}",
            *extra,
        ],
    )


def test_instant_unsupervised_run_through_the_cli(sysu_root, tmp_path):
    r = _train(sysu_root, tmp_path / "usl")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "usl" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:  # per-epoch cluster quality is logged
        for key in (
            "visible_clusters",
            "infrared_clusters",
            "visible_ARI",
            "cross_ARI",
            "nce_visible",
            "nce_infrared",
            "cross",
        ):
            assert key in row, key
        assert np.isfinite(row["loss"])
    assert (tmp_path / "usl" / "results.json").is_file()


def test_adca_option_runs(sysu_root, tmp_path):
    r = _train(sysu_root, tmp_path / "adca", "method.cross=adca", "train.epochs=1")
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "adca" / "metrics.jsonl").read_text().splitlines()[0])
    assert "cross_pairs" in row


def test_all_outliers_skip_the_epoch(sysu_root, tmp_path):
    r = _train(sysu_root, tmp_path / "none", "method.cluster.min_samples=10000", "train.epochs=1")
    assert r.exit_code == 0, r.output
    assert "skipping the epoch" in r.output.replace("\n", " ")
    row = json.loads((tmp_path / "none" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["visible_clusters"] == 0 and "loss" not in row


def test_cluster_features_handles_tiny_inputs():
    assert cluster_features(np.zeros((1, 4), np.float32), 30, 6, 0.6, 4).tolist() == [-1]
    # fewer samples than k1: k1 is clamped to N (the community code would crash)
    labels = cluster_features(np.eye(4, dtype=np.float32), 30, 6, 0.6, 4)
    assert labels.shape == (4,) and set(labels.tolist()) <= {-1, 0}


def test_cross_modality_ari():
    labels = {0: np.array([0, 1, -1]), 1: np.array([1, 0])}
    pids = {0: np.array([7, 8, 9]), 1: np.array([8, 7])}
    assert cross_modality_ari(labels, pids, np.array([0, 1])) == 1.0  # right partners
    assert cross_modality_ari(labels, pids, np.array([1, 0])) < 0  # swapped partners
    assert cross_modality_ari(labels, pids, None) is None
