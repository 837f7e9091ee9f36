"""Issue 26, training side: ``vireid train`` never overwrites a run silently, checks its
settings when the config is loaded, and turns unreadable data, decompression bombs,
absurd ids and a diverging loss into one line naming the path, key or step."""

import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reliability_helpers import INSTANT, assert_one_line_error, digest, error_lines
from vireid.cli import app
from vireid.engine.checkpoint import load_checkpoint
from vireid.engine.hooks import MetricsHook

runner = CliRunner()


def train_args(root, out, *extra):
    return [
        "train",
        str(INSTANT),
        f"data.dataset.root={root}",
        f"output_dir={out}",
        f"data.cache_dir={Path(out).parent / 'cache'}",
        *extra,
    ]


def epochs_in(run: Path) -> list[int]:
    return [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ run directories
def test_rerun_refuses_resume_checks_epochs_overwrite_starts_again(sysu_root, tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(app, train_args(sysu_root, run))
    assert r.exit_code == 0, r.output
    before = digest(run / "last.pt")

    r = runner.invoke(app, train_args(sysu_root, run, "train.epochs=1"))
    assert_one_line_error(r, str(run), "already holds a run", "--resume", "--overwrite")
    assert digest(run / "last.pt") == before and epochs_in(run) == [1, 2]

    r = runner.invoke(app, [*train_args(sysu_root, run, "train.epochs=1"), "--resume", "auto"])
    assert_one_line_error(r, "has trained 2 epochs but train.epochs=1", alone=False)
    assert digest(run / "last.pt") == before

    r = runner.invoke(
        app, [*train_args(sysu_root, run, "model.width=0.25", "train.epochs=3"), "--resume", "auto"]
    )
    assert_one_line_error(r, "last.pt", "do not fit", alone=False)  # not a size-mismatch trace

    r = runner.invoke(app, [*train_args(sysu_root, run), "--resume", "auto", "--overwrite"])
    assert_one_line_error(r, "give one")

    r = runner.invoke(app, [*train_args(sysu_root, run, "train.epochs=1"), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert epochs_in(run) == [1]  # not 1, 2, 1
    assert load_checkpoint(run / "last.pt")["epoch"] == 1


class _Trainer:
    is_main = True

    def __init__(self, epoch):
        self.epoch = epoch


def test_metrics_keep_only_the_epochs_training_starts_from(tmp_path):
    """A run killed between its metrics row and its checkpoint resumes from the
    checkpoint: the later rows (and a torn last line) go, so epochs never repeat."""
    rows = [json.dumps({"epoch": e, "loss": 1.0}) for e in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + '\n{"epoch": 4, "lo')
    hook = MetricsHook(tmp_path)
    hook.before_train(_Trainer(2))
    assert epochs_in(tmp_path) == [1, 2]
    hook.before_train(_Trainer(0))
    assert (tmp_path / "metrics.jsonl").read_text() == ""


# ------------------------------------------------------------------ config at load
@pytest.mark.parametrize(
    "override,needle",
    [
        ("eval.protocol=sysu/bogus", "eval.protocol: unknown protocol 'sysu/bogus'"),
        ("eval.protocol=regdb/v2t", "evaluates regdb but data.dataset.name=sysu_mm01"),
        ("eval.trials=0", "eval.trials=0"),
        ("eval.select_on_test=true", "needs eval.every > 0"),
    ],
)
def test_late_settings_fail_at_load_before_any_work(tmp_path, override, needle):
    run = tmp_path / "never"
    r = runner.invoke(app, train_args(tmp_path / "no-data", run, override))
    assert_one_line_error(r, needle)
    assert not run.exists()  # refused before the run directory or the data were touched
    r = runner.invoke(app, ["config", "validate", str(INSTANT), override])
    assert_one_line_error(r, needle)


def test_device_name_is_checked_at_load(tmp_path):
    r = runner.invoke(app, ["config", "validate", str(INSTANT), "train.device=gpu"])
    assert r.exit_code == 2 and "train.device" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_config_is_refused(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    for cmd in (["config", "validate"], ["train"]):
        assert_one_line_error(runner.invoke(app, [*cmd, str(path)]), str(path), "empty config")


# ------------------------------------------------------------------ divergence
def test_non_finite_loss_names_the_step_and_the_term(sysu_root, tmp_path):
    r = runner.invoke(app, train_args(sysu_root, tmp_path / "lr", "train.lr=1e6"))
    line = assert_one_line_error(r, "non-finite loss", "step ", "train.lr", alone=False)
    assert "term(s)" in line or "overflowed" in line


# ------------------------------------------------------------------ --nproc
def test_nproc_with_a_missing_root_says_it_once_without_spawning(tmp_path, monkeypatch):
    from vireid.cli import train_cmd

    spawned = []
    monkeypatch.setattr(train_cmd, "launch_torchrun", lambda n, argv: spawned.append(n) or 1)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    missing = tmp_path / "missing"
    r = runner.invoke(app, [*train_args(missing, tmp_path / "r"), "--nproc", "4"])
    assert_one_line_error(r, str(missing))
    assert spawned == []


# ------------------------------------------------------------------ unreadable data
def test_unreadable_identity_folder_is_one_line(sysu_copy, tmp_path, monkeypatch):
    """Root cannot be denied a read, so the denial is simulated where the reader lists."""
    locked = next(p for p in sorted((sysu_copy / "cam1").iterdir()) if p.is_dir())
    real = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    r = runner.invoke(app, train_args(sysu_copy, tmp_path / "r"))
    assert_one_line_error(r, str(locked), "Permission denied", alone=False)


def _first_test_folder(root: Path) -> Path:
    test_id = min(int(x) for x in (root / "exp" / "test_id.txt").read_text().split(","))
    return root / "cam1" / f"{test_id:04d}"


def test_unreadable_test_identity_folder_stops_the_run_before_training(
    sysu_copy, tmp_path, monkeypatch
):
    """The final evaluation found it, after every epoch; now the run stops before any step."""
    locked = _first_test_folder(sysu_copy)
    real = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    run = tmp_path / "r"
    r = runner.invoke(app, train_args(sysu_copy, run))
    assert not (run / "last.pt").exists() and not (run / "metrics.jsonl").exists(), r.output
    assert_one_line_error(r, str(locked), "test folder", "Permission denied", alone=False)


def test_unreadable_test_image_stops_the_run_before_training(sysu_copy, tmp_path, monkeypatch):
    """Root reads every file, so the denial is simulated for both a stat and an open."""
    from PIL import Image

    denied = {str(p) for p in _first_test_folder(sysu_copy).iterdir()}
    real_access, real_open = os.access, Image.open

    def access(path, mode, **k):
        return str(path) not in denied and real_access(path, mode, **k)

    def open_(fp, *a, **k):
        if str(fp) in denied:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *a, **k)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(Image, "open", open_)
    run = tmp_path / "r"
    r = runner.invoke(app, train_args(sysu_copy, run))
    assert not (run / "last.pt").exists() and not (run / "metrics.jsonl").exists(), r.output
    line = assert_one_line_error(r, "cannot read this test image (permission denied)", alone=False)
    assert line.split(": ", 2)[1] in denied, line


def test_unreadable_training_image_is_one_line(sysu_copy, tmp_path, monkeypatch):
    from PIL import Image

    real = Image.open
    locked = sorted((sysu_copy / "cam1").rglob("*.jpg"))
    denied = {str(p) for p in locked}

    def open_(fp, *a, **k):
        if str(fp) in denied:
            raise PermissionError(13, "Permission denied", str(fp))
        return real(fp, *a, **k)

    monkeypatch.setattr(Image, "open", open_)
    r = runner.invoke(app, train_args(sysu_copy, tmp_path / "r"))
    line = assert_one_line_error(r, "permission denied", alone=False)
    assert "/cam1/" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
def test_unreadable_folder_by_mode_is_one_line(sysu_copy, tmp_path):
    locked = next(p for p in sorted((sysu_copy / "cam1").iterdir()) if p.is_dir())
    locked.chmod(0)
    try:
        r = runner.invoke(app, train_args(sysu_copy, tmp_path / "r"))
    finally:
        locked.chmod(0o755)
    assert_one_line_error(r, str(locked), alone=False)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` pixels (the header is all a bomb needs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "size,needle",
    [((12000, 8000), "decompression bomb"), ((7000, 6000), "more than the limit")],
    ids=["bomb", "over-cap"],
)
@pytest.mark.parametrize("cache", ["true", "false"])
def test_decompression_bomb_in_a_training_set_names_the_file(
    sysu_copy, tmp_path, size, needle, cache
):
    train_id = int((sysu_copy / "exp" / "train_id.txt").read_text().split(",")[0])
    victim = sorted((sysu_copy / "cam1" / f"{train_id:04d}").glob("*.jpg"))[0]
    victim.write_bytes(_png_header(*size))
    args = train_args(sysu_copy, tmp_path / "r", f"data.cache={cache}", "data.workers=1")
    assert_one_line_error(runner.invoke(app, args), str(victim), needle, alone=False)


def test_huge_identity_folder_is_one_line_before_training(tmp_path):
    from conftest import write_image

    root = tmp_path / "fold"
    k = 0
    for split in ("train", "query", "gallery"):
        for mod, cam in (("visible", 1), ("infrared", 2)):
            for pid in ("1", "2", "99999999999999999999"):
                for i in range(2):
                    k += 1
                    write_image(root / split / mod / f"cam{cam}" / pid / f"{i}.png", k)
    args = train_args(root, tmp_path / "r", "data.dataset.name=folder", "eval.protocol=folder")
    r = runner.invoke(app, [*args, "data.batch.num_ids=2"])
    line = assert_one_line_error(r, "99999999999999999999", "64-bit", alone=False)
    assert "/cam" in line and not (tmp_path / "r" / "metrics.jsonl").exists()
    assert len(error_lines(r.output)) == 1


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(sysu_root, tmp_path):
    r = runner.invoke(app, train_args(sysu_root, tmp_path / "r", "train.device=cuda"))
    assert_one_line_error(r, "train.device=cuda", "no CUDA device")
