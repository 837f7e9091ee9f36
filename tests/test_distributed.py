"""Two gloo ranks on CPU give exactly the single-process features (padding removed)."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vireid.data.protocols import query_gallery
from vireid.engine.distributed import gather_ordered, shard_indices
from vireid.evaluation.features import extract_features
from vireid.models.two_stream import TwoStreamNet

pytestmark = pytest.mark.dist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model():
    torch.manual_seed(0)
    return TwoStreamNet("resnet18", 0, width=0.125, non_local=False).eval()


def _worker(rank, world, port, samples, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    idx = shard_indices(len(samples), rank, world)
    local = extract_features(_model(), [samples[i] for i in idx], 64, 32, batch_size=8)
    full = gather_ordered(torch.from_numpy(local), len(samples), world)
    if rank == 0:
        np.save(out, full.numpy())
    dist.destroy_process_group()


def test_shard_indices_cover_in_order():
    for n in (1, 5, 8, 11):
        shards = [shard_indices(n, r, 3) for r in range(3)]
        assert len({len(s) for s in shards}) == 1
        order = torch.tensor(shards).T.reshape(-1)[:n]  # what gather_ordered interleaves
        assert order.tolist() == list(range(n))


def test_two_ranks_equal_one_process(sysu_root, tmp_path):
    q, _ = query_gallery("sysu/all/single", sysu_root, 0)
    samples = q[:13]  # odd count: exercises the padding
    out = tmp_path / "gathered.npy"
    mp.spawn(_worker, args=(2, _free_port(), samples, str(out)), nprocs=2, join=True)
    single = extract_features(_model(), samples, 64, 32, batch_size=8)
    np.testing.assert_allclose(np.load(out), single, rtol=0, atol=1e-6)


@pytest.mark.slow  # one unexplained failure under CI load (C++ terminate in a rank); see notes
@pytest.mark.parametrize(
    "recipe,extra",
    [
        ("instant_mmm.yaml", []),
        ("instant.yaml", ["method.name=mun"]),
        ("instant.yaml", ["method.name=maum", "method.memory_size=2"]),
    ],
    ids=["mmm", "mun", "maum"],
)
def test_two_rank_training_through_the_cli(sysu_root, tmp_path, recipe, extra):
    """torchrun with 2 gloo ranks and no hang. MMM: clustering on rank 0 + broadcast,
    sharded samplers with equal step counts, memory updates gathered across ranks. MUN and
    MAUM: every trainable parameter receives a gradient on every rank (DDP's reducer would
    otherwise wait), frozen shared classifier."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    cfg = Path(__file__).parents[1] / "configs" / "tests" / recipe
    out = tmp_path / "ddp"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vireid",
            "train",
            str(cfg),
            f"data.dataset.root={sysu_root}",
            f"output_dir={out}",
            f"data.cache_dir={tmp_path / 'c'}",
            "train.epochs=1",
            *extra,
            "--nproc",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[:3000] + "\n...\n" + r.stderr[-3000:]
    assert json.loads((out / "results.json").read_text())["protocol"] == "sysu/all/single"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # rank 0 writes once
