import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import straight_and_resumed
from vireid.config import load_config
from vireid.engine.checkpoint import CheckpointError, load_checkpoint
from vireid.engine.run import train
from vireid.engine.schedule import lr_factor

INSTANT = Path(__file__).parents[1] / "configs" / "tests" / "instant.yaml"


def cfg_for(root, out, *extra):
    return load_config(
        INSTANT,
        [
            f"data.dataset.root={root}",
            f"output_dir={out}",
            f"data.cache_dir={out.parent / 'cache'}",
            *extra,
        ],
    )


def state(path):
    return load_checkpoint(path)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_lr_schedule_matches_agw():
    f = [lr_factor(e, 10, [20, 50], 0.1) for e in (0, 4, 9, 10, 19, 20, 49, 50, 80)]
    assert f == pytest.approx([0.1, 0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


@pytest.fixture(scope="module")
def straight(sysu_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "straight"
    result = train(cfg_for(sysu_root, out, "train.epochs=3"))
    return out, result


def test_instant_run_writes_everything(straight):
    out, _result = straight
    for name in (
        "config.yaml",
        "env.json",
        "metrics.jsonl",
        "last.pt",
        "results.json",
        "results.csv",
    ):
        assert (out / name).is_file(), name
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    res = json.loads((out / "results.json").read_text())
    assert res["protocol"] == "sysu/all/single" and len(res["trials"]) == 2
    assert 0 <= res["mean"]["mAP"] <= 100
    assert (out / "results.csv").read_text().splitlines()[1].startswith("sysu/all/single,")
    ck = load_checkpoint(out / "last.pt")
    assert ck["epoch"] == 3 and ck["step"] == 9 and ck["fingerprint"]


def test_resume_is_exact(straight, sysu_root, tmp_path):
    out = tmp_path / "resumed"
    train(cfg_for(sysu_root, out, "train.epochs=1"))
    train(cfg_for(sysu_root, out, "train.epochs=3"), resume="auto")
    assert_same_weights(state(out / "last.pt"), state(straight[0] / "last.pt"))


def test_killed_run_resumes_exactly(straight, sysu_root, tmp_path):
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "vireid",
        "train",
        str(INSTANT),
        f"data.dataset.root={sysu_root}",
        f"output_dir={out}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "train.epochs=3",
    ]
    # one thread, like the in-process reference run (conftest), so sums round alike
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = (tmp_path / "log.txt").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    ck = out / "last.pt"
    deadline = time.time() + 120
    while not ck.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert ck.exists(), (tmp_path / "log.txt").read_text()[-3000:]
    epoch = load_checkpoint(ck)["epoch"]
    if epoch >= 3:
        pytest.skip("the run finished before it could be killed")
    subprocess.run([*args, "--resume", "auto"], check=True, capture_output=True, env=env)
    assert_same_weights(state(ck), state(straight[0] / "last.pt"))
    assert not list(out.glob(".last.pt.*.tmp"))  # no half-written checkpoint left


def test_mun_resumes_exactly_with_its_prototypes(sysu_root, tmp_path):
    """A method's extra state (MUN's prototypes of the previous step, which Eq. 14
    accumulates) travels through the checkpoint: stopped after epoch 1 and resumed, the
    run ends with the weights of a straight run. β is held at 0.5 so the stopped run's
    shorter schedule (``train.epochs=1``) does not change its first epoch."""
    beta = ["method.ma_beta_start=0.5", "method.ma_beta_end=0.5"]
    a, mid, b = straight_and_resumed(INSTANT, sysu_root, tmp_path, 2, 1, "method.name=mun", *beta)
    assert mid["epoch"] == 1 and mid["extra"]  # the prototypes were saved
    assert_same_weights(b["model"], a["model"])


def test_resume_refuses_another_dataset(straight, regdb_root, tmp_path):
    cfg = load_config(
        INSTANT,
        [
            "data.dataset.name=regdb",
            f"data.dataset.root={regdb_root}",
            "eval.protocol=regdb/v2t",
            f"output_dir={tmp_path / 'r'}",
            f"data.cache_dir={tmp_path / 'c'}",
            "data.batch.num_ids=2",
        ],
    )
    with pytest.raises(CheckpointError, match="another dataset"):
        train(cfg, resume=str(straight[0] / "last.pt"))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a loadable vireid checkpoint"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_caj_and_regdb_instant(regdb_root, tmp_path):
    cfg = load_config(
        INSTANT,
        [
            "data.dataset.name=regdb",
            f"data.dataset.root={regdb_root}",
            "data.dataset.trial=3",
            "eval.protocol=regdb/t2v",
            f"output_dir={tmp_path / 'caj'}",
            "method.name=caj",
            "data.augment.channel_exchange=true",
            "data.augment.channel_erasing=0.5",
            "data.augment.adaptive_gray=0.5",
            "data.batch.num_ids=2",
            f"data.cache_dir={tmp_path / 'c'}",
        ],
    )
    out = train(cfg)
    ev = out["eval"]
    assert [t["trial"] for t in ev["trials"]] == [3]  # a RegDB model: its own split only
    assert ev["trials"][0]["num_query"] == 6 * 4
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in out["history"])


def test_select_on_test_is_labelled(sysu_root, tmp_path):
    out = train(
        cfg_for(
            sysu_root,
            tmp_path / "sel",
            "train.epochs=2",
            "eval.every=1",
            "eval.select_on_test=true",
        )
    )
    assert out["eval"]["selected_on_test_epoch"] in (1, 2)
    assert all("val_mAP" in h for h in out["history"])
    plain = train(cfg_for(sysu_root, tmp_path / "plain", "train.epochs=1"))
    assert plain["eval"]["selected_on_test_epoch"] is None


def test_trainer_tells_the_method_when_amp_skipped_the_step():
    """fp16 AMP: GradScaler skips a step whose gradients are not finite. The trainer must
    say so (``optimizer_stepped``) before ``after_optimizer_step``, so a method that
    snapshots state after a step (MAUM's proxy memory) can leave it alone."""
    from torch import nn

    from vireid.engine.trainer import Trainer
    from vireid.methods.base import Method

    class Probe(Method):
        def __init__(self):
            super().__init__(nn.Linear(1, 1))
            self.w = nn.Parameter(torch.zeros(1))
            self.bad, self.seen = True, []

        def training_step(self, batch):
            # sqrt at 0: a finite loss whose gradient is not finite
            shift = 0.0 if self.bad else 1.0
            loss = torch.sqrt(self.w.abs() + shift).sum() + 0 * self.model(batch["images"]).sum()
            return {"loss": loss}

        def after_optimizer_step(self):
            self.seen.append(self.optimizer_stepped)

    probe = Probe()
    opt = torch.optim.SGD(probe.parameters(), lr=0.1)
    trainer = Trainer(probe, opt, [], epochs=1, device=torch.device("cpu"), hooks=[], amp="fp16")
    batch = {"images": torch.zeros(2, 1)}
    trainer.train_step(batch)
    probe.bad = False
    trainer.train_step(batch)
    assert probe.seen == [False, True]
