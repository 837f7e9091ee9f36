"""Train and evaluate one run from a ``RunCfg``: ``vireid train`` and ``make demo`` call
``train``. The run directory receives the resolved config, the environment, metrics,
checkpoints, results and the rank report."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from ..config import ConfigError, RunCfg, dump_config
from ..data.datasets import build_dataset
from ..data.holdout import hold_out_ids
from ..data.imbalance import keep_fraction
from ..data.protocols import get_protocol
from ..data.protocols.readable import check_readable
from ..data.subset import first_identities
from ..data.usl import LoaderOpts
from ..evaluation.evaluator import ProtocolResult, evaluate_protocol, resolve_trials
from ..evaluation.results import write_results
from ..evaluation.test_time import TestTime
from ..methods import build_method
from ..models import build_model
from ..models.sync_bn import convert_sync_bn
from ..utils.device import pick_device
from ..utils.env import collect_env
from ..utils.io import write_json, write_text
from ..utils.logging import get_logger, run_log
from ..utils.seed import seed_everything
from .builders import (
    build_optimizer,
    build_streams,
    build_train_data,
    dataset_fingerprint,
    dataset_trial,
    featurizer,
    init_weights,
    stage_model,
)
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_shapes,
    load_checkpoint,
    restore_rng,
)
from .distributed import DistInfo, close_distributed, init_distributed, set_global_batch
from .hooks import CheckpointHook, EvalHook, LRScheduleHook, MetricsHook
from .progress_hook import ProgressHook
from .pseudo_labels import PseudoLabelHook
from .run_dir import check_epochs_left
from .trainer import Trainer
from .validation import BestCheckpointHook, validation_eval

log = get_logger(__name__)


def check_protocol(cfg: RunCfg):
    """The spec of ``eval.protocol``, which must evaluate the dataset the model saw."""
    spec = get_protocol(cfg.eval.protocol)
    if spec.dataset != cfg.data.dataset.name:
        raise ValueError(
            f"eval.protocol={spec.name} evaluates {spec.dataset} but the model "
            f"was trained on data.dataset.name={cfg.data.dataset.name}"
        )
    return spec


def evaluation_root(cfg: RunCfg, spec, root):
    """The dataset root to evaluate ``spec`` on: ``root`` when given, else the training
    dataset's when the protocol evaluates that dataset; another dataset needs its root."""
    if root is not None:
        return root
    if spec.dataset == cfg.data.dataset.name:
        return cfg.data.dataset.root
    raise ValueError(
        f"{spec.name} evaluates {spec.dataset}, not the {cfg.data.dataset.name} the model was "
        f"trained on: give that dataset's root (--root PATH or --root {spec.dataset}=PATH)"
    )


def run_evaluation(
    model,
    cfg: RunCfg,
    device,
    info: DistInfo,
    trials,
    rerank=None,
    root=None,
    manifest=None,
    protocol: str | None = None,
) -> ProtocolResult:
    """Evaluate ``model`` on ``protocol`` (default: ``eval.protocol``, which must evaluate
    the training dataset). Another dataset's protocol (cross-dataset evaluation) needs its
    ``root``; the result names the dataset trained on. ``rerank``: a bool or a
    ``TestTime``; None = the config's (``eval.rerank``, ``eval.query_expansion``, …)."""
    if rerank is None:
        rerank = TestTime.from_cfg(cfg.eval)
    spec = check_protocol(cfg) if protocol is None else get_protocol(protocol)
    same = spec.dataset == cfg.data.dataset.name
    root = evaluation_root(cfg, spec, root)
    if manifest is None and same:
        manifest = getattr(cfg.data.dataset, "manifest", None)
    featurize = featurizer(model, cfg, device, info)
    result = evaluate_protocol(spec.name, root, trials, featurize, rerank, manifest)
    result.trained_on = cfg.data.dataset.name
    return result


def eval_trials(cfg: RunCfg, trials=None) -> list[int]:
    if get_protocol(cfg.eval.protocol).trial_is_split:
        return [dataset_trial(cfg)]  # a RegDB model is only ever evaluated on its own split
    return resolve_trials(cfg.eval.protocol, cfg.eval.trials if trials is None else trials)


def prepare_run_dir(cfg: RunCfg, info: DistInfo) -> Path:
    run_dir = Path(cfg.output_dir)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", dump_config(cfg))
        write_json(run_dir / "env.json", collect_env())
    return run_dir


def resume_from(trainer: Trainer, path: Path, fingerprint: str) -> None:
    state = load_checkpoint(path)
    if "optimizer" not in state:
        raise CheckpointError(
            f"{path}: holds weights only (an export or import); resume needs a last.pt, "
            "or start from it with train.init_from"
        )
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path}: trained on another dataset copy or trial "
            f"(fingerprint {state.get('fingerprint')} vs {fingerprint})"
        )
    check_epochs_left(path, state["epoch"], trainer.epochs)
    check_shapes(path, state["model"], trainer.method.state_dict())
    trainer.method.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scaler is not None and state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.epoch, trainer.step = state["epoch"], state["step"]
    trainer.method.load_extra_state(state.get("extra") or {})
    restore_rng(state)
    log.info("resumed from %s at epoch %d of %d", path, trainer.epoch, trainer.epochs)
    if trainer.epoch == trainer.epochs:
        log.info("all %d epochs were already trained: evaluating only", trainer.epochs)


def training_splits(cfg: RunCfg):
    """The dataset's splits with the training list the run trains on (``data.subset_ids``:
    the first identities, for smoke runs; ``data.keep_fraction``: the modality imbalance)."""
    splits = build_dataset(cfg.data.dataset)
    if cfg.data.subset_ids is not None:  # a few identities (smoke runs)
        splits = dataclasses.replace(
            splits, train=first_identities(splits.train, cfg.data.subset_ids)
        )
    if (kf := cfg.data.keep_fraction) is not None:  # the modality-imbalance setting
        before = len(splits.train)
        train_set = keep_fraction(splits.train, kf.modality, kf.fraction, kf.seed)
        splits = dataclasses.replace(splits, train=train_set)
        log.info(
            "keep_fraction: %s x%g, %d of %d training images",
            kf.modality,
            kf.fraction,
            len(train_set),
            before,
        )
    return splits


def train(cfg: RunCfg, resume: str | None = None, evaluate: bool = True) -> dict:
    """Train, then evaluate the last epoch on every trial. Returns the results dict.
    ``evaluate=False``: stop after training (a smoke run's first part, resumed later)."""
    device = pick_device(cfg.train.device)
    info = init_distributed(device.type)
    try:
        out = _train(cfg, resume, device, info, evaluate)
    except BaseException:
        close_distributed(info, wait=False)  # torchrun stops the other ranks
        raise
    close_distributed(info, wait=True)
    return out


def _train(
    cfg: RunCfg, resume: str | None, device: torch.device, info: DistInfo, evaluate: bool = True
) -> dict:
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    run_dir = prepare_run_dir(cfg, info)
    with run_log(run_dir / "log.txt" if info.is_main else None):
        log.info("run %s: %s on %s, %d epochs", run_dir, cfg.method.name, device, cfg.train.epochs)
        return _train_in(cfg, resume, device, info, run_dir, evaluate)


def _train_in(
    cfg: RunCfg, resume, device: torch.device, info: DistInfo, run_dir: Path, evaluate: bool
) -> dict:
    splits = training_splits(cfg)
    # the test images too, so an unreadable one stops the run now, not after the last epoch
    manifest = getattr(cfg.data.dataset, "manifest", None)
    root = evaluation_root(cfg, check_protocol(cfg), None)
    check_readable(cfg.eval.protocol, root, eval_trials(cfg), manifest)
    val = None
    if cfg.data.val_ids:
        if cfg.eval.select_on_test:
            raise ConfigError(
                "eval.select_on_test picks an epoch on the test set; with data.val_ids the "
                "validation split picks it (best.pt): set one of them"
            )
        train_set, val = hold_out_ids(splits.train, cfg.data.val_ids, cfg.train.seed)
        splits = dataclasses.replace(splits, train=train_set)
        log.info(
            "validation split: %d identities held out (%d infrared queries, %d visible "
            "gallery images)",
            len(val.pids),
            len(val.query),
            len(val.gallery),
        )
    fingerprint = dataset_fingerprint(splits)
    t = cfg.train
    unsupervised = cfg.method.unsupervised
    data = None if unsupervised else build_train_data(cfg, info, splits)
    model = build_model(cfg.model, 0 if unsupervised else data.num_classes)
    if t.init_from is not None:
        init_weights(model, t.init_from)
    method = build_method(cfg.method, model).to(device)
    if info.enabled and t.sync_bn:  # the global batch's statistics (one process: plain BN)
        method = convert_sync_bn(method)
    if t.channels_last:
        method.to(memory_format=torch.channels_last)
    hooks = [LRScheduleHook(t.lr, t.warmup_epochs, t.milestones, t.gamma, t.warmup_start_lr)]
    if unsupervised:
        streams = build_streams(cfg, splits)
        labeller = PseudoLabelHook(
            method,
            streams,
            featurizer(model, cfg, device, info, clustering=True),
            cfg.method.cluster,
            cfg.data.batch,
            LoaderOpts(t.iters_per_epoch, t.seed, cfg.data.workers, info.rank, info.world_size),
            info,
        )
        hooks.append(labeller)
        if (stage_a := getattr(cfg.method, "labels_from", None)) is not None:
            # offline labels from an earlier stage, before the optimiser exists: they size
            # the method's parameters (MMM's shared classifier)
            labeller.offline(featurizer(stage_model(cfg, stage_a, device), cfg, device, info, True))
    opt = build_optimizer(cfg, method)
    module = method
    set_global_batch(info.enabled)  # DDP: ranks share the recipe's batch; methods gather it
    if info.enabled:
        module = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )

    def quick_eval(trainer, quick=True):
        return run_evaluation(model, cfg, device, info, eval_trials(cfg, 1)).table()

    if val is not None:
        rule = get_protocol(cfg.eval.protocol).rule
        quick_eval = validation_eval(model, cfg, device, info, val, rule)

    # the bar stops before evaluation draws its own; evaluation before metrics, so an
    # epoch's row carries its monitoring numbers
    hooks += [
        ProgressHook(t.log_every),
        EvalHook(cfg.eval.every, quick_eval, cfg.eval.select_on_test, val is not None),
        MetricsHook(run_dir, t.log_every, info.is_main),
        CheckpointHook(
            run_dir,
            t.checkpoint_every,
            cfg.model_dump(mode="json"),
            fingerprint,
            dataset_trial(cfg),
            t.keep_checkpoints,
        ),
    ]
    if val is not None:  # after the evaluation hook, whose val_mAP it reads
        hooks.append(BestCheckpointHook(like=hooks[-1]))
    tracker = None
    if t.logger != "none" and info.is_main:
        from .loggers import TrackerHook

        config = cfg.model_dump(mode="json")
        tracker = TrackerHook(t.logger, t.logger_project, run_dir, config, t.log_every)
        hooks.append(tracker)
    trainer = Trainer(
        method,
        opt,
        None if unsupervised else data.loader,
        epochs=t.epochs,
        device=device,
        hooks=hooks,
        amp=t.amp,
        grad_clip=t.grad_clip,
        channels_last=t.channels_last,
        iters_per_epoch=None if unsupervised else t.iters_per_epoch,
        module=module,
        is_main=info.is_main,
    )
    if resume:
        path = run_dir / CHECKPOINT_NAME if resume == "auto" else Path(resume)
        if path.is_file() or resume != "auto":
            resume_from(trainer, path, fingerprint)
    trainer.fit()
    if not evaluate:
        return {"run_dir": str(run_dir), "history": trainer.history}
    trials = eval_trials(cfg)
    log.info("final evaluation: %s, %d trial(s)", cfg.eval.protocol, len(trials))
    t_eval = time.perf_counter()
    result = run_evaluation(model, cfg, device, info, trials)
    eval_seconds = time.perf_counter() - t_eval
    selected = getattr(trainer, "selected_epoch", None)
    if selected is not None:
        result.selected_on_test = selected
        log.warning(
            "eval.select_on_test: reporting epoch %d, chosen on the TEST set (paper "
            "reproduction only; not a valid model selection)",
            selected,
        )
    if tracker is not None:
        tracker.finish(result.table(), trainer.step)
    out = {
        "run_dir": str(run_dir),
        "history": trainer.history,
        "eval": result.to_json(),
        "eval_seconds": eval_seconds,
    }
    if info.is_main:
        write_results(run_dir, result)
        if cfg.eval.report:
            from ..report import write_report

            log.info("writing the rank report to %s", run_dir / "report")
            write_report(run_dir / "report", result)
    out["result"] = result
    return out
