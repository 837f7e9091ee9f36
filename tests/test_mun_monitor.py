"""benchmarks/mun_monitor.py's weight-decay-only reference (the review's defect 7): the
logged layer scales and ‖W_p − I‖ are epoch means of per-step values taken before each
update, so the reference must integrate the per-step lr (warm-up included) and average
over the epoch's steps, not apply the epoch's last lr to all of its steps."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import mun_monitor  # noqa: E402
from vireid.config import load_config  # noqa: E402

RECIPE = Path(__file__).parents[1] / "configs" / "supervised" / "mun_sysu.yaml"


def test_decay_only_follows_the_per_step_warmup_and_averages_like_the_logs():
    cfg = load_config(RECIPE, ["train.warmup_epochs=2", "train.milestones=[3]"])
    t = cfg.train
    steps = [4, 4, 4, 4]
    means, end = mun_monitor.decay_only(cfg, steps)
    # AdamW with zero gradient: p ← p·(1 − lr·wd) per step; lr ramps per step from
    # warmup_start_lr over the first 2 epochs, then the base lr, ×0.1 from epoch 3
    lrs = [t.warmup_start_lr + (t.lr - t.warmup_start_lr) * j / 8 for j in range(8)]
    lrs += [t.lr] * 4 + [t.lr * 0.1] * 4
    p, before = 1.0, []
    for lr in lrs:
        before.append(p)
        p *= 1 - lr * t.weight_decay
    assert end == pytest.approx(p, rel=1e-6)
    want = [sum(before[i : i + 4]) / 4 for i in range(0, 16, 4)]
    assert means == pytest.approx(want, rel=1e-6)
    assert means[0] > end  # the first epoch's mean is not the run's end factor
