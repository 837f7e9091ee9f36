"""Layer 2 for training: turn a ``RunCfg`` into data, model, method, optimiser, hooks and a
run directory, then train and evaluate. ``vireid train`` and ``make demo`` call ``train``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import RunCfg, dump_config
from ..data.cache import build_cache
from ..data.datasets import DatasetSplits, build_dataset
from ..data.loader import ImageDataset, make_loader
from ..data.protocols import get_protocol
from ..data.records import relabel
from ..data.samplers import CrossModalitySampler
from ..data.transforms import build_train_transforms
from ..evaluation.evaluator import ProtocolResult, evaluate_protocol, resolve_trials
from ..evaluation.features import extract_features
from ..evaluation.results import write_results
from ..methods import build_method
from ..models import build_model
from ..utils.env import collect_env
from ..utils.io import write_json, write_text
from ..utils.logging import get_logger
from ..utils.progress import progress_bar
from ..utils.seed import seed_everything
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, restore_rng
from .distributed import DistInfo, gather_ordered, init_distributed, shard_indices
from .hooks import CheckpointHook, EvalHook, LRScheduleHook, MetricsHook
from .trainer import Trainer

log = get_logger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name} but CUDA is not available on this machine")
    return torch.device(name)


def dataset_fingerprint(splits: DatasetSplits) -> str:
    h = hashlib.sha1(splits.name.encode())
    for s in splits.train:
        h.update(f"{Path(s.path).relative_to(splits.root)}|{s.pid}|{s.camid}\n".encode())
    return h.hexdigest()[:16]


def dataset_trial(cfg: RunCfg) -> int | None:
    return getattr(cfg.data.dataset, "trial", None)


@dataclass
class TrainData:
    splits: DatasetSplits
    loader: torch.utils.data.DataLoader
    num_classes: int


def build_train_data(cfg: RunCfg, info: DistInfo) -> TrainData:
    splits = build_dataset(cfg.data.dataset)
    mapping = relabel(splits.train)
    labels = [mapping[s.pid] for s in splits.train]
    d = cfg.data
    images = None
    if d.cache:
        cache_dir = d.cache_dir or Path(cfg.output_dir).parent / ".cache"
        with progress_bar("decoding images into the cache", len(splits.train)) as adv:
            images = build_cache([s.path for s in splits.train], d.height, d.width, cache_dir, adv)
    a = d.augment
    tf = build_train_transforms(
        d.height,
        d.width,
        pad=a.pad,
        flip=a.flip,
        random_erasing=a.random_erasing,
        channel_erasing=a.channel_erasing,
        channel_exchange=a.channel_exchange,
        adaptive_gray=a.adaptive_gray,
    )
    dataset = ImageDataset(splits.train, tf, labels, images)
    sampler = CrossModalitySampler(
        labels,
        [s.modality for s in splits.train],
        d.batch.num_ids,
        d.batch.num_instances,
        cfg.train.iters_per_epoch,
        seed=cfg.train.seed,
        rank=info.rank,
        world_size=info.world_size,
    )
    gen = torch.Generator().manual_seed(cfg.train.seed)
    loader = make_loader(dataset, batch_sampler=sampler, workers=d.workers, generator=gen)
    return TrainData(splits, loader, len(mapping))


def featurizer(model, cfg: RunCfg, device, info: DistInfo):
    def featurize(samples):
        idx = shard_indices(len(samples), info.rank, info.world_size)
        local = extract_features(
            model,
            [samples[i] for i in idx],
            cfg.data.height,
            cfg.data.width,
            batch_size=cfg.eval.batch_size,
            flip=cfg.eval.flip,
            device=device,
            amp=cfg.train.amp,
        )
        return gather_ordered(torch.from_numpy(local), len(samples), info.world_size).numpy()

    return featurize


def run_evaluation(
    model, cfg: RunCfg, device, info: DistInfo, trials, rerank=False, root=None
) -> ProtocolResult:
    spec = get_protocol(cfg.eval.protocol)
    if spec.dataset != cfg.data.dataset.name:
        raise ValueError(
            f"eval.protocol={spec.name} evaluates {spec.dataset} but the model "
            f"was trained on data.dataset.name={cfg.data.dataset.name}"
        )
    root = root or cfg.data.dataset.root
    return evaluate_protocol(spec.name, root, trials, featurizer(model, cfg, device, info), rerank)


def eval_trials(cfg: RunCfg, trials=None) -> list[int]:
    trial = dataset_trial(cfg)
    if get_protocol(cfg.eval.protocol).trial_is_split:
        return [trial]  # a RegDB model is only ever evaluated on its own split
    return resolve_trials(cfg.eval.protocol, cfg.eval.trials if trials is None else trials)


def prepare_run_dir(cfg: RunCfg, info: DistInfo) -> Path:
    run_dir = Path(cfg.output_dir)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", dump_config(cfg))
        write_json(run_dir / "env.json", collect_env())
    return run_dir


def train(cfg: RunCfg, resume: str | None = None) -> dict:
    """Train, then evaluate the last epoch on every trial. Returns the results dict."""
    device = pick_device(cfg.train.device)
    info = init_distributed(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    run_dir = prepare_run_dir(cfg, info)
    data = build_train_data(cfg, info)
    fingerprint = dataset_fingerprint(data.splits)
    model = build_model(cfg.model, data.num_classes)
    method = build_method(cfg.method, model).to(device)
    if cfg.train.channels_last:
        method.to(memory_format=torch.channels_last)
    t = cfg.train
    groups = method.param_groups(t.lr, t.backbone_lr_mult)
    if t.optimizer == "sgd":
        opt = torch.optim.SGD(
            groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, nesterov=t.nesterov
        )
    else:
        opt = torch.optim.Adam(groups, lr=t.lr, weight_decay=t.weight_decay)
    module = method
    if info.enabled:
        module = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    config = cfg.model_dump(mode="json")

    def quick_eval(trainer, quick=True):
        trials = eval_trials(cfg, trials=1 if quick else None)
        return run_evaluation(model, cfg, device, info, trials).table()

    hooks = [
        LRScheduleHook(t.lr, t.warmup_epochs, t.milestones, t.gamma),
        MetricsHook(run_dir, t.log_every),
        EvalHook(cfg.eval.every, quick_eval),
        CheckpointHook(run_dir, t.checkpoint_every, config, fingerprint, dataset_trial(cfg)),
    ]
    trainer = Trainer(
        method,
        opt,
        data.loader,
        epochs=t.epochs,
        device=device,
        hooks=hooks,
        amp=t.amp,
        grad_clip=t.grad_clip,
        channels_last=t.channels_last,
        iters_per_epoch=t.iters_per_epoch,
        module=module,
        is_main=info.is_main,
    )
    if resume:
        path = run_dir / CHECKPOINT_NAME if resume == "auto" else Path(resume)
        if path.is_file() or resume != "auto":
            state = load_checkpoint(path)
            if state.get("fingerprint") != fingerprint:
                raise CheckpointError(
                    f"{path}: trained on another dataset copy or trial "
                    f"(fingerprint {state.get('fingerprint')} vs {fingerprint})"
                )
            method.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if trainer.scaler is not None and state.get("scaler"):
                trainer.scaler.load_state_dict(state["scaler"])
            trainer.epoch, trainer.step = state["epoch"], state["step"]
            restore_rng(state)
            log.info("resumed from %s at epoch %d", path, trainer.epoch)
    trainer.fit()
    result = run_evaluation(model, cfg, device, info, eval_trials(cfg))
    out = {"run_dir": str(run_dir), "history": trainer.history, "eval": result.to_json()}
    if info.is_main:
        write_results(run_dir, result)
        if cfg.eval.report:
            from ..report import write_report

            write_report(run_dir / "report", result)
    out["result"] = result
    return out
