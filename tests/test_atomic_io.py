"""Atomic writes (``vireid.utils.io``): the mode a plain ``open`` would give, flushed to
disk before the rename, temporary files of killed writers removed; and ``kill -9`` during
a checkpoint save leaves the old checkpoint or the new one, from which training resumes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reliability_helpers import INSTANT
from vireid.engine.checkpoint import load_checkpoint
from vireid.utils import io as vio
from vireid.utils.io import atomic_write, remove_stale_temps, write_text


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("umask,want", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_get_the_umask_mode(tmp_path, umask, want):
    old = os.umask(umask)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == want


def test_rewritten_file_keeps_its_mode(tmp_path):
    path = write_text(tmp_path / "a.txt", "x")
    path.chmod(0o640)
    write_text(path, "y")
    assert _mode(path) == 0o640 and path.read_text() == "y"


def test_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("rename") or real_replace(a, b))
    write_text(tmp_path / "a.txt", "x")
    assert events == ["fsync", "rename", "fsync"]  # file, rename, directory


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")

    def boom(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, boom)
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temps_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "last.pt"
    prefix = vio._temp_prefix(target)
    dead = tmp_path / f"{prefix}{_dead_pid()}.abcd1234.tmp"
    live = tmp_path / f"{prefix}{os.getppid()}.abcd1234.tmp"  # a running process
    other = tmp_path / f"{vio._temp_prefix(tmp_path / 'other.pt')}{_dead_pid()}.ab.tmp"
    for p in (dead, live, other):
        p.write_bytes(b"x" * 100)
    assert remove_stale_temps(target) == [dead]
    assert live.exists() and other.exists()
    atomic_write(tmp_path / "other.pt", lambda t: Path(t).write_text("x"))  # not asked to
    assert other.exists()
    atomic_write(tmp_path / "other.pt", lambda t: Path(t).write_text("x"), clean_stale=True)
    assert not other.exists()


SAVER = textwrap.dedent(
    """
    import sys, torch
    from vireid.engine.checkpoint import save_checkpoint

    class Opt:
        def state_dict(self):
            return {}

    model = torch.nn.Linear(1000, 1000)  # 4 MB of weights: a save takes a while
    path = sys.argv[1]
    for epoch in range(1, 10**6):
        save_checkpoint(path, model=model, optimizer=Opt(), scaler=None, epoch=epoch, step=epoch,
                        config={}, fingerprint="f", trial=None)
        print(epoch, flush=True)
    """
)


def _kill_savers(path: Path, rounds: int) -> None:
    """A process that does nothing but save checkpoints, killed (SIGKILL) at a random
    time, ``rounds`` times: the file always loads and holds an epoch the process finished
    saving (or the next one, whose rename had happened); the next save removes the
    killed writers' temp files."""
    from vireid.engine.checkpoint import save_checkpoint

    rng = random.Random(rounds)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(rounds):
        p = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        first = p.stdout.readline()  # one save done: there is an old file from now on
        assert first.strip(), "the saver did not start"
        time.sleep(rng.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        done = [int(first), *map(int, p.stdout.read().split())]
        p.wait()
        epoch = load_checkpoint(path)["epoch"]
        assert epoch in (done[-1], done[-1] + 1), (epoch, done[-1])

    class Opt:
        def state_dict(self):
            return {}

    import torch

    save_checkpoint(path, model=torch.nn.Linear(2, 2), optimizer=Opt(), scaler=None, epoch=0,
                    step=0, config={}, fingerprint="f", trial=None)  # fmt: skip
    assert not [f for f in os.listdir(path.parent) if f.endswith(".tmp")]


def test_kill_during_checkpoint_save_leaves_old_or_new(tmp_path):
    _kill_savers(tmp_path / "last.pt", 1)


@pytest.mark.slow
def test_kill_during_checkpoint_saves_many_times(tmp_path):
    _kill_savers(tmp_path / "last.pt", 8)


KILLED_TRAIN = textwrap.dedent(
    """
    import io, sys, time
    import torch
    real = torch.save
    calls = []

    def save(obj, f, *a, **k):  # the second checkpoint hangs: SIGKILL lands inside it
        calls.append(1)
        if len(calls) < 2:
            return real(obj, f, *a, **k)
        buf = io.BytesIO()
        real(obj, buf, *a, **k)
        data = buf.getvalue()
        with open(f, "wb") as out:
            out.write(data if sys.argv[1] == "after-write" else data[: len(data) // 2])
        print("SAVING", flush=True)
        time.sleep(600)

    torch.save = save
    from vireid.cli import app
    sys.argv = ["vireid", *sys.argv[2:]]
    app()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["mid-write", "after-write"])
def test_kill_during_a_training_checkpoint_then_resume(sysu_root, tmp_path, when):
    """``vireid train`` killed while writing epoch 2's checkpoint: last.pt is epoch 1's,
    ``--resume auto`` finishes the run, metrics hold each epoch once, no temp file stays."""
    run = tmp_path / "run"
    args = [
        "train",
        str(INSTANT),
        f"data.dataset.root={sysu_root}",
        f"output_dir={run}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "train.epochs=3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(
        [sys.executable, "-c", KILLED_TRAIN, when, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    for line in p.stdout:
        if "SAVING" in line:
            break
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert [f for f in os.listdir(run) if f.endswith(".tmp")]  # the killed save's temp
    r = subprocess.run(
        [sys.executable, "-m", "vireid", *args, "--resume", "auto"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(run / "last.pt")["epoch"] == 3
    rows = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3]
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]
