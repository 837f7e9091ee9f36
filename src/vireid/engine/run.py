"""Train and evaluate one run from a ``RunCfg``: ``vireid train`` and ``make demo`` call
``train``. The run directory receives the resolved config, the environment, metrics,
checkpoints, results and the rank report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..config import RunCfg, dump_config
from ..data.datasets import build_dataset
from ..data.imbalance import keep_fraction
from ..data.protocols import get_protocol
from ..data.usl import LoaderOpts
from ..evaluation.evaluator import ProtocolResult, evaluate_protocol, resolve_trials
from ..evaluation.results import write_results
from ..methods import build_method
from ..models import build_model
from ..utils.device import pick_device
from ..utils.env import collect_env
from ..utils.io import write_json, write_text
from ..utils.logging import get_logger
from ..utils.seed import seed_everything
from .builders import (
    build_optimizer,
    build_streams,
    build_train_data,
    dataset_fingerprint,
    dataset_trial,
    featurizer,
    init_weights,
)
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, restore_rng
from .distributed import DistInfo, close_distributed, init_distributed
from .hooks import CheckpointHook, EvalHook, LRScheduleHook, MetricsHook
from .pseudo_labels import PseudoLabelHook
from .trainer import Trainer

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


def run_evaluation(
    model, cfg: RunCfg, device, info: DistInfo, trials, rerank=False, root=None, manifest=None
) -> ProtocolResult:
    spec = check_protocol(cfg)
    root = root or cfg.data.dataset.root
    manifest = manifest or getattr(cfg.data.dataset, "manifest", None)
    featurize = featurizer(model, cfg, device, info)
    return evaluate_protocol(spec.name, root, trials, featurize, rerank, manifest)


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
    trainer.method.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scaler is not None and state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.epoch, trainer.step = state["epoch"], state["step"]
    trainer.method.load_extra_state(state.get("extra") or {})
    restore_rng(state)
    log.info("resumed from %s at epoch %d", path, trainer.epoch)


def training_splits(cfg: RunCfg):
    """The dataset's splits with the training list the run trains on
    (``data.keep_fraction``: the modality-imbalance setting)."""
    splits = build_dataset(cfg.data.dataset)
    if (kf := cfg.data.keep_fraction) is not None:
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


def train(cfg: RunCfg, resume: str | None = None) -> dict:
    """Train, then evaluate the last epoch on every trial. Returns the results dict."""
    device = pick_device(cfg.train.device)
    info = init_distributed(device.type)
    try:
        out = _train(cfg, resume, device, info)
    except BaseException:
        close_distributed(info, wait=False)  # torchrun stops the other ranks
        raise
    close_distributed(info, wait=True)
    return out


def _train(cfg: RunCfg, resume: str | None, device: torch.device, info: DistInfo) -> dict:
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    run_dir = prepare_run_dir(cfg, info)
    splits = training_splits(cfg)
    fingerprint = dataset_fingerprint(splits)
    t = cfg.train
    unsupervised = cfg.method.unsupervised
    data = None if unsupervised else build_train_data(cfg, info, splits)
    model = build_model(cfg.model, 0 if unsupervised else data.num_classes)
    if t.init_from is not None:
        init_weights(model, t.init_from)
    method = build_method(cfg.method, model).to(device)
    if t.channels_last:
        method.to(memory_format=torch.channels_last)
    opt = build_optimizer(cfg, method)
    module = method
    if info.enabled:
        module = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )

    def quick_eval(trainer, quick=True):
        return run_evaluation(model, cfg, device, info, eval_trials(cfg, 1)).table()

    hooks = [LRScheduleHook(t.lr, t.warmup_epochs, t.milestones, t.gamma, t.warmup_start_lr)]
    if unsupervised:
        streams = build_streams(cfg, splits)
        b = cfg.data.batch
        iters = t.iters_per_epoch or max(
            1, len(streams[1].samples) // ((b.num_ids_infrared or b.num_ids) * b.num_instances)
        )
        hooks.append(
            PseudoLabelHook(
                method,
                streams,
                featurizer(model, cfg, device, info, clustering=True),
                cfg.method.cluster,
                b,
                LoaderOpts(iters, t.seed, cfg.data.workers, info.rank, info.world_size),
                info,
            )
        )
    # evaluation before metrics, so an epoch's row carries its monitoring numbers
    hooks += [
        EvalHook(cfg.eval.every, quick_eval, cfg.eval.select_on_test),
        MetricsHook(run_dir, t.log_every),
        CheckpointHook(
            run_dir,
            t.checkpoint_every,
            cfg.model_dump(mode="json"),
            fingerprint,
            dataset_trial(cfg),
        ),
    ]
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
    result = run_evaluation(model, cfg, device, info, eval_trials(cfg))
    selected = getattr(trainer, "selected_epoch", None)
    if selected is not None:
        result.selected_on_test = selected
        log.warning(
            "eval.select_on_test: reporting epoch %d, chosen on the TEST set (paper "
            "reproduction only; not a valid model selection)",
            selected,
        )
    out = {"run_dir": str(run_dir), "history": trainer.history, "eval": result.to_json()}
    if info.is_main:
        write_results(run_dir, result)
        if cfg.eval.report:
            from ..report import write_report

            write_report(run_dir / "report", result)
    out["result"] = result
    return out
