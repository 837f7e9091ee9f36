"""EMCC's k3 (and camera awareness) on clustering quality alone: the joint (both
modalities) clustering of the synthetic benchmark's training set, on the clustering
features of the synthetic pretraining stand-in (the weights ECUL's quickstart starts
from), scored against the true identities (ARI / NMI / clusters / outliers). No
training: it isolates what the distance does to the labels of the first epoch.

Settings: configs/quickstart/ecul_synth.yaml (joint k1 15, k2 6, eps 0.5, min 3); k3 from
k1 to 6·k1 and off; camera-aware expansion on and off.

    python benchmarks/bench_ecul_k3.py [--k3 15 20 30 45 60 90]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from bench_effects import CACHE, dataset
from vireid.clustering import cluster_quality
from vireid.clustering.emcc import emcc_labels
from vireid.config import load_config
from vireid.data.datasets import build_dataset
from vireid.data.synthetic import SynthSpec
from vireid.engine.builders import build_streams, featurizer
from vireid.engine.distributed import DistInfo
from vireid.models import build_model

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "configs" / "quickstart" / "ecul_synth.yaml"


def clustering_settings(m, n: int) -> dict:
    """The recipe and the joint-clustering settings a result was measured with."""
    return {
        "recipe": str(RECIPE.relative_to(ROOT)),
        "n": n,
        "joint_k1": m.joint_k1,
        "joint_k2": m.joint_k2,
        "eps": m.cluster.eps,
        "min_samples": m.cluster.min_samples,
    }


def clustering_features(root: Path):
    over = [f"data.dataset.root={root}", f"data.cache_dir={CACHE / 'image-cache'}"]
    cfg = load_config(RECIPE, over)
    splits = build_dataset(cfg.data.dataset)
    streams = build_streams(cfg, splits)
    model = build_model(cfg.model, 0).eval()
    featurize = featurizer(model, cfg, torch.device("cpu"), DistInfo(), clustering=True)
    feats = [featurize(s.samples, s.images) for s in streams.values()]
    samples = [x for s in streams.values() for x in s.samples]
    is_ir = np.r_[np.zeros(len(feats[0]), bool), np.ones(len(feats[1]), bool)]
    return cfg, np.concatenate(feats), is_ir, samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k3", type=int, nargs="*", default=[15, 20, 30, 45, 60, 90])
    a = ap.parse_args()
    cfg, x, is_ir, samples = clustering_features(dataset(SynthSpec()))
    m = cfg.method
    camera = np.array([s.camid for s in samples])
    pids = np.array([s.pid for s in samples])
    rows = []
    for cam in (True, False):
        for k3 in [*a.k3, None]:
            t0 = time.perf_counter()
            labels = emcc_labels(
                x,
                m.joint_k1,
                m.joint_k2,
                k3,
                m.cluster.eps,
                m.cluster.min_samples,
                modality=is_ir,
                camera=camera if cam else None,
                knn_backend="faiss",
            )
            q = cluster_quality(labels, pids)
            both = np.intersect1d(labels[~is_ir & (labels >= 0)], labels[is_ir & (labels >= 0)])
            rows.append(
                {
                    "k3": k3,
                    "camera_aware": cam,
                    "seconds": time.perf_counter() - t0,
                    "mixed_clusters": len(both),
                    **q,
                }
            )
            print(rows[-1], file=sys.stderr)
    emit("ecul_k3", {**clustering_settings(m, len(x)), "rows": rows})


if __name__ == "__main__":
    main()
