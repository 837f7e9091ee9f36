"""Realistic clustering features at scale: a population of unseen synthetic identities
rendered in memory, run through a network trained on the synthetic benchmark.

The clustering benchmarks (``bench_cluster.py --features NAME``, ``bench_mmm_step.py``)
measure the pseudo-label step on features a trained Re-ID network produces, beside the
isotropic Gaussian model (``bench_cluster.features``, the adversarial case: its variance
is spread evenly over all 2048 dimensions, so no projection or partition keeps its
neighbours).

* **Population**: the synthetic generator's SYSU-MM01 cameras (4 visible, 2 infrared),
  identities drawn from seed ``POP_SEED`` (disjoint from the benchmark's seed-0
  identities the networks were trained and tested on), 12–27 frames per (identity,
  camera), ≈ 86 images per identity as in SYSU-MM01's training set (34,167 images of 395
  identities); a population of N images holds ≈ N / 86.5 identities, so 34k is
  SYSU-sized and 100k has 1,157 identities. Images are rendered into arrays (no JPEG
  tree) and passed through an in-memory JPEG round trip at the writer's quality, so the
  pixels are those the networks were trained on. Each identity's images depend only on
  (seed, pid): a smaller population is a prefix of a larger one (same images, same
  features), which is how 12k and 34k are cut from the 100k cache.
* **Networks** (``NETWORKS``): ``agw`` = the AGW quickstart (``configs/quickstart/
  agw_synth.yaml``: ResNet-18 width 0.5, D = 256) and ``agw_r50`` = the same recipe on a
  ResNet-50 of full width (D = 2048) with a shorter schedule, both trained once on the
  synthetic benchmark (``bench_effects.dataset``, default factors, seed 0) from the
  synthetic stand-in for ImageNet weights.
* **Features**: what the clustering methods cluster (``featurizer(..., clustering=True)``:
  flip-averaged, L2-normalised before the average, not re-normalised) for ``agw``; the
  single-pass L2-normalised feature for ``agw_r50`` (``FLIP``: half the CPU time), with
  each image's pid, camera and modality.

Everything is cached under ``.cache/scale_features/`` by a digest of its settings
(population spec and size; the network's config, its training data and stand-in), so a
second call reads arrays and the benchmarks can re-run their timing rows alone.

    python benchmarks/scale_features.py --networks agw agw_r50 --images 100000

prints, per network, the features' spectrum (share of variance in the top 64 / 256
principal components) beside the isotropic model's, and writes
``results/scale_features.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).parents[1]
CACHE = ROOT / ".cache" / "scale_features"
POP_SEED = 1  # the benchmark the networks train on uses seed 0
IMAGES_PER_ID = 34167 / 395  # SYSU-MM01's training set
JPEG_QUALITY = 95  # data.synthetic.writer's


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def population_spec():
    from vireid.data.synthetic import SynthSpec

    return SynthSpec(ids=8, seed=POP_SEED, min_images=12, max_images=27)


def ids_for(images: int) -> int:
    return max(8, round(images / IMAGES_PER_ID))


@dataclass
class Population:
    """``images`` (N, H, W, 3) uint8 RGB and per-image ``pid``, ``camid``, ``infrared``."""

    images: np.ndarray
    pid: np.ndarray
    camid: np.ndarray
    infrared: np.ndarray

    def first_ids(self, ids: int) -> Population:
        n = int(np.searchsorted(self.pid, ids, side="right"))  # pids are 1.. ascending
        return Population(self.images[:n], self.pid[:n], self.camid[:n], self.infrared[:n])


def _jpeg(img: np.ndarray) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=JPEG_QUALITY)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _size(path: Path) -> int:
    """The identity count a cache file name ends with."""
    return int(path.stem.split("-")[-1])


def _pop_key() -> str:
    key = population_spec().key()
    key.pop("ids")
    return _digest({**key, "jpeg": JPEG_QUALITY})


def population(ids: int, log=print) -> Population:
    """The first ``ids`` identities of the population, rendered once and cached (a cached
    larger population is cut, not re-rendered)."""
    from vireid.data.synthetic.writer import SYSU_CAMS, sysu_frames

    CACHE.mkdir(parents=True, exist_ok=True)
    key = _pop_key()
    for path in sorted(CACHE.glob(f"pop-{key}-*.npz"), key=_size):
        if _size(path) >= ids:
            z = np.load(path)
            return Population(z["images"], z["pid"], z["camid"], z["infrared"]).first_ids(ids)
    spec = population_spec()
    t0, imgs, meta = time.perf_counter(), [], []
    for pid, cid, _, img in sysu_frames(spec, range(1, ids + 1)):
        imgs.append(_jpeg(img))
        meta.append((pid, cid))
        if len(imgs) % 10000 == 0:
            log(f"rendered {len(imgs)} images ({time.perf_counter() - t0:.0f} s)")
    pid, cid = np.array(meta, np.int64).T
    pop = Population(np.stack(imgs), pid, cid, np.array([SYSU_CAMS[c] for c in cid]))
    path = CACHE / f"pop-{key}-{ids}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=pop.images, pid=pop.pid, camid=pop.camid, infrared=pop.infrared)
    tmp.rename(path)
    log(f"population: {ids} ids, {len(pid)} images in {time.perf_counter() - t0:.0f} s")
    return pop


# the networks: the AGW quickstart and a full-width ResNet-50 on the same recipe. The
# ResNet-50 starts from torchvision's initialisation with zero_init_residual (the file
# ``zero_residual_init`` writes), not from a synthetic stand-in: a ResNet-50 stand-in
# does not learn in the stand-in's 5 epochs at 64x32 (0.5 % training accuracy, see
# docs/benchmark.md "Parity with the community code").
NETWORKS = {
    "agw": [],
    "agw_r50": [
        "model.arch=resnet50",
        "model.width=1.0",
        "model.pretrained=@zero_residual",
        "train.epochs=6",
        "train.milestones=[5]",
    ],
}
# flip-averaged features (what clustering uses) cost two forward passes: the ResNet-50's
# 100k would take ~1,300 CPU-seconds, so its features are the single-pass ones
FLIP = {"agw": True, "agw_r50": False}
RECIPE = ROOT / "configs" / "quickstart" / "agw_synth.yaml"


def zero_residual_init() -> Path:
    """``_common.resnet50_init(zero_residual=True)``, written once into the cache."""
    import torch

    from _common import resnet50_init

    path = CACHE / "init-resnet50-zero_residual-seed0.pth"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(resnet50_init(zero_residual=True), path)
    return path


def checkpoint(name: str, log=print) -> Path:
    """``last.pt`` of network ``name``, trained once (seed 0) on the synthetic benchmark."""
    from bench_effects import CACHE as FX_CACHE
    from bench_effects import _stand_in, dataset
    from vireid.config import load_config
    from vireid.data.synthetic import SynthSpec
    from vireid.engine.run import train

    root = dataset(SynthSpec())
    over = [o.replace("@zero_residual", str(zero_residual_init())) for o in NETWORKS[name]]
    over += [f"data.dataset.root={root}", "train.seed=0", "eval.report=false"]
    cfg = load_config(RECIPE, [*over, f"data.cache_dir={FX_CACHE / 'image-cache'}"])
    explicit = cfg.model_dump(mode="json", exclude_defaults=True)
    explicit.pop("output_dir", None)
    run = CACHE / f"ckpt-{name}-{_digest([explicit, _stand_in(cfg)])}"
    if not (run / "scale_summary.json").is_file():  # written once training has finished
        cfg.output_dir = run
        t0 = time.perf_counter()
        out = train(cfg)
        (run / "scale_summary.json").write_text(
            json.dumps({"eval": out["eval"]["mean"], "seconds": time.perf_counter() - t0})
        )
        log(f"{name}: trained in {time.perf_counter() - t0:.0f} s, {out['eval']['mean']}")
    return run / "last.pt"


def features(name: str, images: int, log=print) -> tuple[np.ndarray, Population]:
    """(N, D) float32 clustering features of the population of ≈ ``images`` images
    through network ``name``, and the population's labels (``images`` dropped)."""
    ids = ids_for(images)
    ckpt = checkpoint(name, log)
    key = _digest([_pop_key(), ckpt.parent.name, FLIP[name]])
    cached = sorted(
        CACHE.glob(f"feats-{name}-{key}-*.npy"), key=lambda p: int(p.stem.split("-")[-1])
    )
    for path in cached:
        if _size(path) >= ids:
            pop = population(ids, log)
            return np.load(path, mmap_mode="r")[: len(pop.pid)], _labels_only(pop)
    pop = population(ids, log)
    feats = extract(ckpt, pop, FLIP[name], log)
    path = CACHE / f"feats-{name}-{key}-{ids}.npy"
    np.save(path.with_suffix(".tmp.npy"), feats)
    path.with_suffix(".tmp.npy").rename(path)
    return feats, _labels_only(pop)


def _labels_only(pop: Population) -> Population:
    return Population(np.zeros((len(pop.pid), 0, 0, 3), np.uint8), pop.pid, pop.camid, pop.infrared)


def extract(ckpt: Path, pop: Population, flip: bool, log=print) -> np.ndarray:
    """Clustering features of every population image: the BN feature, L2-normalised;
    ``flip``: averaged with the mirror's, not re-normalised, as the unsupervised methods
    cluster them (``featurizer(..., clustering=True)``)."""
    from vireid.data.records import Modality, Sample
    from vireid.engine.restore import load_model
    from vireid.evaluation.features import extract_features

    model, cfg, _, dev = load_model(ckpt, "cpu")
    samples = [
        Sample(f"<population {i}>", int(p), int(c), Modality.INFRARED if ir else Modality.VISIBLE)
        for i, (p, c, ir) in enumerate(zip(pop.pid, pop.camid, pop.infrared, strict=True))
    ]
    t0 = time.perf_counter()
    feats = extract_features(
        model,
        samples,
        cfg.data.height,
        cfg.data.width,
        batch_size=256,
        flip=flip,
        renormalize=not flip,
        device=dev,
        images=pop.images,
    )
    log(f"extracted {len(samples)} features in {time.perf_counter() - t0:.0f} s")
    return np.ascontiguousarray(feats, dtype=np.float32)


def spectrum(x: np.ndarray, tops=(64, 256), sample: int = 20000, seed: int = 0) -> dict:
    """Share of the (centred) variance in the top principal components, from ``sample``
    rows."""
    import torch

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), min(len(x), sample), replace=False))
    y = torch.from_numpy(np.asarray(x[rows], dtype=np.float64))
    y -= y.mean(0)
    ev = torch.linalg.eigvalsh(y.T @ y).flip(0).numpy()
    share = np.cumsum(ev) / ev.sum()
    return {f"top{t}": float(share[min(t, len(share)) - 1]) for t in tops} | {"dim": x.shape[1]}


def main() -> None:
    from _common import emit
    from bench_cluster import features as isotropic

    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", nargs="*", default=list(NETWORKS))
    ap.add_argument("--images", type=int, default=100000)
    a = ap.parse_args()
    rows = {"isotropic": {**spectrum(isotropic(a.images)), "images": a.images}}
    for name in a.networks:
        x, pop = features(name, a.images)
        ckpt = checkpoint(name)
        summary = json.loads((ckpt.parent / "scale_summary.json").read_text())
        rows[name] = {
            **spectrum(x),
            "images": len(x),
            "ids": int(pop.pid.max()),
            "infrared": int(pop.infrared.sum()),
            "checkpoint": ckpt.parent.name,
            "network_overrides": NETWORKS[name],
            "flip": FLIP[name],
            "benchmark_eval": summary["eval"],
        }
        print(json.dumps({name: rows[name]}), file=sys.stderr)
    emit("scale_features", {"population_seed": POP_SEED, "rows": rows})


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
