"""What a training run tells while it runs and leaves behind: log.txt with per-iteration
progress (loss terms, images/s, ETA), periodic epoch_N.pt, TensorBoard on rank 0 only, an
optional tracker (W&B / MLflow), and off-terminal progress lines at least every N seconds."""

import logging
import sys
import types

import pytest

from conftest import run_overrides
from vireid.config import load_config
from vireid.engine.run import train


class FakeTracker(types.ModuleType):
    """Records what vireid sends to W&B (``init``/``log``/``finish``)."""

    def __init__(self):
        super().__init__("wandb")
        self.calls = []

    def init(self, **kw):
        self.calls.append(("init", kw))
        return types.SimpleNamespace(finish=lambda: self.calls.append(("finish", None)))

    def log(self, values, step):
        self.calls.append(("log", dict(values), step))


def test_run_writes_log_txt_progress_epoch_checkpoints_and_tracker(
    sysu_root, tmp_path, monkeypatch
):
    fake = FakeTracker()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run = tmp_path / "run"
    cfg = load_config(
        "configs/tests/instant.yaml",
        [
            *run_overrides(sysu_root, run, tmp_path / "c"),
            "train.epochs=3",
            "train.log_every=2",
            "train.keep_checkpoints=2",
            "train.logger=wandb",
            "eval.trials=1",
        ],
    )
    train(cfg)
    text = (run / "log.txt").read_text()
    lines = [x for x in text.splitlines() if " iter " in x]
    # iters_per_epoch 3, a line every 2 iterations: iteration 2 of each epoch
    assert [x.split("vireid.progress: ")[1].split(" ·")[0] for x in lines] == [
        f"epoch {e}/3 iter 2/3" for e in (1, 2, 3)
    ]
    for x in lines:
        assert "loss " in x and " img/s" in x and "ETA " in x and "(run " in x
        assert "ce " in x and "triplet " in x and "acc " not in x  # loss terms, not diagnostics
    assert "epoch 3/3" in text  # the per-epoch summary line too
    # periodic checkpoints beside last.pt, the newest two kept
    assert sorted(p.name for p in run.glob("*.pt")) == ["epoch_2.pt", "epoch_3.pt", "last.pt"]
    from vireid.engine.checkpoint import load_checkpoint

    assert load_checkpoint(run / "epoch_2.pt")["epoch"] == 2
    assert load_checkpoint(run / "epoch_3.pt")["epoch"] == 3
    # the tracker: config, step losses every log_every, epoch rows, the results, closed
    kinds = [c[0] for c in fake.calls]
    assert kinds[0] == "init" and kinds[-1] == "finish"
    assert fake.calls[0][1]["config"]["train"]["logger"] == "wandb"
    steps = [c[2] for c in fake.calls if c[0] == "log" and "train/loss" in c[1]]
    assert steps == [2, 4, 6, 8]
    final = [c[1] for c in fake.calls if c[0] == "log" and "test/mAP" in c[1]]
    assert len(final) == 1 and 0 <= final[0]["test/mAP"] <= 100


def test_a_second_run_writes_its_own_log(sysu_root, tmp_path):
    """log.txt holds its run's lines only while it runs (the handler is removed after)."""
    from vireid.utils.logging import run_log

    log = logging.getLogger("vireid.test")
    with run_log(tmp_path / "a" / "log.txt"):
        log.info("inside a")
    log.info("between")
    with run_log(tmp_path / "b" / "log.txt"):
        log.info("inside b")
    a, b = (tmp_path / "a" / "log.txt").read_text(), (tmp_path / "b" / "log.txt").read_text()
    assert "inside a" in a and "between" not in a and "inside b" not in a
    assert "inside b" in b and "inside a" not in b


def test_off_a_terminal_a_loop_reports_every_n_seconds(monkeypatch, caplog):
    from vireid.utils import progress

    clock = iter(range(0, 1000, 7))  # each call: 7 s later
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    with (
        caplog.at_level(logging.INFO, logger="vireid.progress"),
        progress.progress_bar("features", 10) as advance,
    ):
        for _ in range(10):
            advance(1)
    msgs = [r.getMessage() for r in caplog.records if r.name == "vireid.progress"]
    # start 0 s; advances at 7, 14, ..., 70 s; a line once 30 s have passed since the last
    assert msgs == ["features: 5/10 (50 %), 0:35", "features: 10/10 (100 %), 1:10"]


def test_tensorboard_events_from_rank_0_only(tmp_path, monkeypatch):
    made = []
    tb = types.ModuleType("torch.utils.tensorboard")
    tb.SummaryWriter = lambda path: made.append(path) or types.SimpleNamespace()
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", tb)
    from vireid.engine.hooks import MetricsHook

    MetricsHook(tmp_path / "r1", is_main=False)
    assert made == []
    MetricsHook(tmp_path / "r0", is_main=True)
    assert made == [str(tmp_path / "r0" / "tb")]


def test_unknown_tracker_is_a_config_error():
    from vireid.config import ConfigError

    with pytest.raises(ConfigError, match="train.logger"):
        load_config("configs/tests/instant.yaml", ["train.logger=neptune"])
