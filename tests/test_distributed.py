"""Two gloo ranks on CPU give exactly the single-process features (padding removed), and
memory updates stay in step when a rank has no row of its own."""

import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mutants import apply_from_env  # a spawned rank applies $VIREID_MUTANT itself
from vireid.data.protocols import query_gallery
from vireid.engine.distributed import gather_ordered, shard_indices
from vireid.evaluation.features import extract_features
from vireid.losses.memory import ClusterMemory
from vireid.losses.tsmem import TwoStepMemory
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
    apply_from_env()
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


MAUM_PHASE2 = [
    "method.name=maum",
    "method.memory_size=2",
    "method.uni_start_epoch=0",
    "train.epochs=2",
]


@pytest.mark.slow  # one unexplained failure under CI load (C++ terminate in a rank); see notes
@pytest.mark.parametrize(
    "recipe,extra",
    [
        ("instant_mmm.yaml", []),
        ("instant.yaml", ["method.name=mun"]),
        # MAUM's phase 2 (L_Uni, the memory, the diagnostics' autograd.grad) from epoch 0,
        # two epochs so the epoch store's snapshot reaches the loss
        ("instant.yaml", [*MAUM_PHASE2, "method.memory_store=epoch"]),
        ("instant.yaml", [*MAUM_PHASE2, "method.memory_store=update"]),
        ("instant_ecul.yaml", []),
        ("instant.yaml", ["method.name=mun", "method.upsample=bilinear"]),
    ],
    ids=["mmm", "mun", "maum-epoch", "maum-update", "ecul", "mun-bilinear"],
)
def test_two_rank_training_through_the_cli(sysu_root, tmp_path, recipe, extra):
    """torchrun with 2 gloo ranks and no hang. MMM: clustering on rank 0 + broadcast,
    sharded samplers with equal step counts, memory updates gathered across ranks. MUN and
    MAUM: every trainable parameter receives a gradient on every rank (DDP's reducer would
    otherwise wait), frozen shared classifier, phase 2 with each memory store (L_Uni, the
    update store's all_reduce, the diagnostics' autograd.grad inside the DDP forward).
    ECUL: the broadcast plan and random-rule seed, the cross-modal and instance memories'
    gathers."""
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
    epochs = 2 if "train.epochs=2" in extra else 1
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == epochs  # rank 0 writes once per epoch
    if "method.name=maum" in extra:  # phase 2 ran, with its memory
        last = json.loads(rows[-1])
        assert "uni" in last["terms"] and 0 < last["mem_angle"] < 180


def _memories():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 4, generator=g)
    rows, labels = torch.randn(3, 4, generator=g), torch.tensor([0, 2, 0])
    weights = torch.tensor([0.2, 0.6, 1.0])
    mems = [ClusterMemory(4, 3), ClusterMemory(4, 3, mode="hard"), TwoStepMemory(4, 3)]
    for mem in mems:
        mem.reset(centres)
    return mems, rows, labels, weights


def _update_all(mems, rows, labels, weights):
    mems[0].update(rows, labels, weights)
    mems[1].update(rows, labels)
    mems[2].update_with(rows, labels, "mean")
    mems[2].update_with(rows, labels, "random", torch.Generator().manual_seed(1))
    return torch.stack([m.features for m in mems])


def _memory_worker(rank, world, port, counts, out):
    apply_from_env()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mems, rows, labels, weights = _memories()
    start = sum(counts[:rank])  # this rank's rows of the pool, in rank order
    part = slice(start, start + counts[rank])
    updated = _update_all(mems, rows[part], labels[part], weights[part])
    np.save(f"{out}.{rank}.npy", updated.numpy())
    dist.destroy_process_group()


@pytest.mark.parametrize("counts", [(2, 0), (0, 0), (2, 1)])
def test_memory_updates_with_an_empty_rank_stay_in_step(tmp_path, counts):
    """Methods call every memory update on every rank, with or without rows: the update's
    all-gather must not hang (one rank empty, every rank empty, unequal counts), and both
    ranks must end with all ranks' rows applied in rank order, as one process would."""
    out = str(tmp_path / "mem")
    ctx = mp.spawn(_memory_worker, args=(2, _free_port(), counts, out), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=5) and time.monotonic() < deadline:
        pass  # join() returns after each rank that ends
    hung = [p for p in ctx.processes if p.is_alive()]
    for p in hung:
        p.kill()
    assert not hung, "a rank hung in the memory update"
    mems, rows, labels, weights = _memories()
    n = sum(counts)
    single = _update_all(mems, rows[:n], labels[:n], weights[:n]).numpy()
    for rank in (0, 1):
        np.testing.assert_allclose(np.load(f"{out}.{rank}.npy"), single, rtol=0, atol=1e-6)
    if n == 0:  # no rows anywhere: nothing moves
        untouched = torch.stack([m.features for m in _memories()[0]]).numpy()
        np.testing.assert_array_equal(single, untouched)


class _Recorder:
    """Stands in for a cluster memory: records how many rows each update received."""

    def __init__(self):
        self.rows = []

    def update(self, feats, labels, weights=None):
        self.rows.append(len(labels))

    def update_with(self, feats, labels, rule, generator=None):
        self.rows.append(len(labels))


def _no_infrared_step(name):
    """A method after a step whose infrared rows are all outliers; its memories recorded."""
    from torch import nn

    from vireid.config.schema import ECULMethodCfg, MMMMethodCfg
    from vireid.methods.cluster_contrast import ClusterContrast
    from vireid.methods.ecul import ECUL
    from vireid.methods.mmm import MMM

    model = nn.Linear(4, 4)
    f, m = torch.randn(4, 4), torch.tensor([0, 0, 1, 1])
    y = torch.tensor([0, 1, -1, -1])
    if name == "cluster_contrast":
        method = ClusterContrast(model)
        method.memories = {0: _Recorder(), 1: _Recorder()}
        method._last = (f[:2], y[:2], m[:2])  # its batches hold clustered rows only
    elif name == "ecul":
        method = ECUL(model, ECULMethodCfg())
        method.memories = {k: _Recorder() for k in ("v", "r", "vr", "instance")}
        a = {"intra": y, "joint_loss": torch.tensor([0, -1, -1, -1])}
        method._last = (f, m, torch.arange(4), a)
    else:
        method = MMM(model, MMMMethodCfg())
        method.memories = {k: _Recorder() for k in ("v", "r", "vr")}
        a = {"intra": y, "conf": torch.ones(4), "joint": torch.tensor([0, -1, -1, -1])}
        method._last = (f, f, m, torch.zeros(4), a)
    method.after_optimizer_step()
    return method.memories


@pytest.mark.parametrize("name", ["cluster_contrast", "ecul", "mmm"])
def test_every_memory_update_runs_without_rows_of_the_rank(name):
    """Under DDP each memory update all-gathers: a rank whose batch had no clustered row
    for a memory must still call its update (with zero rows), or the other ranks hang."""
    memories = _no_infrared_step(name)
    infrared = memories[1] if name == "cluster_contrast" else memories["r"]
    assert infrared.rows == [0]
    assert all(mem.rows for mem in memories.values())
