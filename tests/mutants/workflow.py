"""Mutants of the everyday workflow (issue 27): test-time options (αQE, re-ranking
settings, eval.rerank read, the pool feature), the RegDB trial rule of cross-dataset
evaluation, periodic checkpoints, and what a run reports (log.txt, progress at least every
N seconds, TensorBoard on rank 0 only)."""

from __future__ import annotations

from vireid.cli import checkpoint_args
from vireid.engine import hooks
from vireid.evaluation import evaluator, features, test_time
from vireid.utils import logging as vlogging
from vireid.utils import progress

from . import mutant, replace

TT = "tests/test_test_time.py::"
OBS = "tests/test_observability.py::"


@mutant(
    "workflow.query_expansion_skipped",
    "eval.query_expansion: the features reach the ranking unexpanded",
    tests=[TT + "test_score_applies_query_expansion_and_rerank_settings"],
    fast=True,
)
def _(mp):
    replace(mp, test_time, "query_expansion", lambda q, g, k, alpha=3.0: (q, g))


@mutant(
    "workflow.rerank_settings_dropped",
    "eval.rerank_k1/k2/lambda: re-ranking always runs with 20/6/0.3",
    tests=[TT + "test_score_applies_query_expansion_and_rerank_settings"],
    fast=True,
)
def _(mp):
    real = evaluator.rerank_features
    replace(mp, evaluator, "rerank_features", lambda qf, gf, *a, **k: real(qf, gf))


@mutant(
    "workflow.eval_rerank_key_unread",
    "eval.rerank and the other test-time keys of a config are ignored (the dead key again)",
    tests=[TT + "test_eval_rerank_and_query_expansion_are_read_from_the_config"],
)
def _(mp):
    mp.setattr(test_time.TestTime, "from_cfg", classmethod(lambda cls, ev: cls()))


@mutant(
    "workflow.pool_feature_ignored",
    "eval.feature=pool: the BNNeck feature is extracted anyway",
    tests=[TT + "test_pool_feature_is_the_pre_bn_feature"],
)
def _(mp):
    real = features.extract_features
    replace(mp, features, "extract_features", lambda *a, **k: real(*a, **{**k, "which": "feat"}))


@mutant(
    "workflow.regdb_any_trial",
    "A RegDB model may be evaluated on another trial, whose test ids it trained on",
    tests=[
        "tests/test_cross_dataset.py::test_regdb_model_stays_on_its_trial_but_may_test_elsewhere"
    ],
)
def _(mp):
    real = checkpoint_args.checkpoint_trials
    replace(
        mp,
        checkpoint_args,
        "checkpoint_trials",
        lambda spec, ckpt, trained_on, trained, trial, n: real(spec, ckpt, "", trained, trial, n),
    )


@mutant(
    "workflow.epoch_checkpoints_never_pruned",
    "train.keep_checkpoints: every epoch_N.pt stays",
    tests=[OBS + "test_run_writes_log_txt_progress_epoch_checkpoints_and_tracker"],
)
def _(mp):
    def keep_all(self, epoch):
        import os

        os.link(self.path, self.path.with_name(f"epoch_{epoch}.pt"))

    mp.setattr(hooks.CheckpointHook, "_keep_epoch", keep_all)


@mutant(
    "workflow.no_log_txt",
    "The run folder gets no log.txt",
    tests=[OBS + "test_run_writes_log_txt_progress_epoch_checkpoints_and_tracker"],
)
def _(mp):
    from contextlib import nullcontext

    replace(mp, vlogging, "run_log", lambda path: nullcontext())


@mutant(
    "workflow.progress_only_every_n",
    "Off a terminal progress comes only every N items: a slow loop stays silent for minutes",
    tests=[OBS + "test_off_a_terminal_a_loop_reports_every_n_seconds"],
    fast=True,
)
def _(mp):
    replace(mp, progress, "progress_seconds", lambda: float("inf"))


@mutant(
    "workflow.tensorboard_every_rank",
    "Every DDP rank writes TensorBoard events",
    tests=[OBS + "test_tensorboard_events_from_rank_0_only"],
    fast=True,
)
def _(mp):
    real = hooks.MetricsHook.__init__
    mp.setattr(
        hooks.MetricsHook,
        "__init__",
        lambda self, run_dir, log_every=20, is_main=True: real(self, run_dir, log_every, True),
    )


@mutant(
    "workflow.validation_ids_still_trained_on",
    "data.val_ids: the held-out identities stay in the training list",
    tests=["tests/test_validation_split.py::test_hold_out_takes_whole_identities_out_of_training"],
)
def _(mp):
    from vireid.data import holdout

    real = holdout.hold_out_ids

    def leaky(train, n, seed):
        return list(train), real(train, n, seed)[1]

    replace(mp, holdout, "hold_out_ids", leaky)
