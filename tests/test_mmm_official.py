"""MMM's official pipeline as a recipe chain: stage A1 (intra Cluster-Contrast) → A2 (+ joint
memory) → stage B (a fresh network on labels clustered and matched once from A2's model,
shared-classifier CE with a warm-up, triplet, L1 Intra, official Inter)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_overrides
from vireid.clustering import cluster_labels
from vireid.config import load_config
from vireid.config.chains import resolve_checkpoint
from vireid.data.datasets import build_dataset
from vireid.engine.builders import build_streams, featurizer, stage_model
from vireid.engine.checkpoint import load_checkpoint
from vireid.engine.distributed import DistInfo
from vireid.engine.run import train
from vireid.models import build_model

CONFIGS = Path(__file__).parents[1] / "configs"
CHAIN = ["mmm_official_sysu_a1", "mmm_official_sysu_a2", "mmm_official_sysu"]
# tiny model and data, clustering scaled to the tiny synthetic tree (instant_mmm.yaml)
TINY = [
    "model.arch=resnet18",
    "model.width=0.125",
    "model.pretrained=null",
    "data.height=64",
    "data.width=32",
    "data.workers=0",
    "data.batch.num_ids=2",
    "data.batch.num_ids_infrared=2",
    "data.batch.num_instances=2",
    "method.cluster.k1=6",
    "method.cluster.k2=2",
    "method.cluster.eps=0.5",
    "method.cluster.min_samples=2",
    "eval.trials=2",
    "eval.batch_size=64",
    "eval.report=false",
    "train.log_every=1",
]


def _recipes() -> dict[str, object]:
    return {p.stem: load_config(p) for p in sorted((CONFIGS / "unsupervised").glob("*.yaml"))}


@pytest.mark.parametrize("name", ["pgm_sysu", "mmm_official_sysu_a2", "mmm_official_sysu"])
def test_a_chained_recipe_can_load_the_checkpoint_of_its_stage_a(name):
    """The checkpoint a recipe starts from (train.init_from) or takes its labels from
    (method.labels_from) is another recipe's output with the same network: pgm_sysu and
    the official MMM preset named cluster_contrast_sysu's run (non-local off) for a
    non-local model, a CheckpointError at load."""
    cfg = _recipes()[name]
    key = "train.init_from" if cfg.train.init_from else "method.labels_from"
    ref = resolve_checkpoint(cfg.train.init_from or cfg.method.labels_from, key)
    assert ref.recipe is not None, f"{name}: {key} is not a declared chain (recipe:…)"
    producer = load_config(ref.recipe)
    assert ref.path == Path(producer.output_dir) / "last.pt"
    spec = {"pretrained": None, "width": 0.125}
    theirs = build_model(producer.model.model_copy(update=spec), 0).state_dict()
    ours = build_model(cfg.model.model_copy(update=spec), 0).state_dict()
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in ours.items()}


def _run(name, root, tmp_path, *extra):
    cfg = load_config(
        CONFIGS / "unsupervised" / f"{name}.yaml",
        [*run_overrides(root, tmp_path / name, tmp_path / "cache"), *TINY, *extra],
    )
    return cfg, train(cfg)


@pytest.mark.slow
def test_official_chain_runs_end_to_end(sysu_root, tmp_path):
    """A1 → A2 → B at tiny size. Stage B clusters and matches A2's features once (not
    its own), trains a shared classifier on the unified labels (CE alone in the warm-up
    epoch, then with the triplet, the L1 Intra and the Inter, without memory terms), and
    an epoch is N / (P·K) + 1 iterations."""
    _run("mmm_official_sysu_a1", sysu_root, tmp_path, "train.epochs=1", "train.iters_per_epoch=2")
    a1 = tmp_path / "mmm_official_sysu_a1" / "last.pt"
    _, out = _run(
        "mmm_official_sysu_a2",
        sysu_root,
        tmp_path,
        "train.epochs=1",
        "train.iters_per_epoch=2",
        f"train.init_from={a1}",
        "method.joint_k1=8",
        "method.joint_k2=3",
    )
    assert "nce_joint" in out["history"][0]["terms"]
    a2 = tmp_path / "mmm_official_sysu_a2" / "last.pt"
    cfg, out = _run(
        "mmm_official_sysu",
        sysu_root,
        tmp_path,
        "train.epochs=3",
        "method.id_warmup_epochs=1",
        "method.num_memories=2",
        "method.kmeans_n_init=1",
        f"method.labels_from={a2}",
    )
    h = out["history"]
    assert h[0]["terms"] == ["id"]  # the CE warm-up
    assert set(h[2]["terms"]) == {"id", "triplet", "intra", "inter"}  # no memory terms
    state = load_checkpoint(tmp_path / "mmm_official_sysu" / "last.pt")
    frozen = state["extra"]["frozen"]
    # the labels are A2's clusters, not those of stage B's own (fresh) network
    streams = build_streams(cfg, build_dataset(cfg.data.dataset))
    cpu = torch.device("cpu")
    teacher = featurizer(stage_model(cfg, a2, cpu), cfg, cpu, DistInfo(), clustering=True)
    c = cfg.method.cluster
    for m, st in streams.items():
        want = cluster_labels(teacher(st.samples), c.k1, c.k2, c.eps, c.min_samples)
        np.testing.assert_array_equal(frozen["labels"][m].numpy(), want)
    # iterations per epoch: the larger modality's labelled images over P·K, plus one
    unified = frozen["plan"]["unified"]
    n = max(int((unified[m] >= 0).sum()) for m in (0, 1))
    assert h[0]["step"] == n // (2 * 2) + 1
    assert "classifier.weight" in state["model"]


def test_one_pass_per_epoch_is_the_codes_identity_sampler_length():
    """``train.iters_per_epoch: null`` with cross-modality batches: N / (P·K) + 1
    iterations, N the larger modality's labelled samples (the official IdentitySampler);
    per-modality batches keep the infrared images over the infrared batch."""
    from types import SimpleNamespace

    from vireid.config.schema import BatchCfg
    from vireid.data.usl import LoaderOpts
    from vireid.engine.pseudo_labels import PseudoLabelHook

    lab = {0: np.r_[np.repeat(np.arange(5), 9), [-1] * 7], 1: np.repeat(np.arange(5), 4)}
    method = SimpleNamespace(sampling="cross", sampling_labels=lab)
    streams = {m: SimpleNamespace(samples=[None] * len(lab[m])) for m in (0, 1)}
    batch = BatchCfg(num_ids=2, num_instances=4)
    hook = PseudoLabelHook(method, streams, None, None, batch, LoaderOpts(None, 0), DistInfo())
    assert hook._one_pass(lab, shared=5) == 45 // 8 + 1
    assert hook._one_pass(lab, shared=0) == 20 // 8
