"""Where EMCC's cameras act, on clustering quality alone: the first epoch's joint (both
modalities) clustering of the synthetic benchmark's training set (SYSU layout: 4 visible
and 2 infrared cameras) on the stand-in's clustering features, scored against the true
identities. Rows: no cameras; cameras in the k2 expansion (the default); cameras in the
k-reciprocal search (``camera_rule: search``, the CA-Jaccard reading) at a few
``k1_intra``; each with the recipe's k3 and without it. No training.

Settings: configs/quickstart/ecul_synth.yaml (joint k1 15, k2 6, k3 30, eps 0.5, min 3).

    python benchmarks/bench_ecul_cameras.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from bench_ecul_k3 import clustering_features, clustering_settings
from bench_effects import dataset
from vireid.clustering import cluster_quality
from vireid.clustering.camera_search import CameraSearch
from vireid.clustering.emcc import emcc_labels
from vireid.data.synthetic import SynthSpec


def main() -> None:
    cfg, x, is_ir, samples = clustering_features(dataset(SynthSpec()))
    m = cfg.method
    camera = np.array([s.camid for s in samples])
    pids = np.array([s.pid for s in samples])
    s = m.camera_search
    variants = [
        ("none", None, None),
        ("expansion", camera, None),
        *[
            (f"search k1_intra {k}", camera, CameraSearch(k, s.k2_intra, s.k2_inter))
            for k in (3, s.k1_intra, 8)
        ],
    ]
    rows = []
    for name, cam, search in variants:
        for k3 in (m.joint_k3, None):
            t0 = time.perf_counter()
            labels = emcc_labels(
                x,
                m.joint_k1,
                m.joint_k2,
                k3,
                m.cluster.eps,
                m.cluster.min_samples,
                modality=is_ir,
                camera=cam,
                knn_backend="faiss",
                camera_search=search,
            )
            q = cluster_quality(labels, pids)
            both = np.intersect1d(labels[~is_ir & (labels >= 0)], labels[is_ir & (labels >= 0)])
            mixed = np.isin(labels, both)
            rows.append(
                {
                    "cameras": name,
                    "k3": k3,
                    "seconds": time.perf_counter() - t0,
                    "mixed_clusters": len(both),
                    "in_mixed_clusters": float(mixed.mean()),
                    **{k: v for k, v in q.items() if k != "true_ids"},
                }
            )
            print(rows[-1], file=sys.stderr)
    emit("ecul_cameras", {**clustering_settings(m, len(x)), "rows": rows})


if __name__ == "__main__":
    main()
