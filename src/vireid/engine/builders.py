"""Layer 2 for training: ``RunCfg`` → device, data, optimiser, feature extractors.

Everything here reads a config and hands explicit arguments to the building blocks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import RunCfg
from ..data.cache import build_cache
from ..data.datasets import DatasetSplits
from ..data.loader import MODALITY_INDEX, ImageDataset, make_loader
from ..data.records import Modality, relabel
from ..data.samplers import CrossModalitySampler
from ..data.transforms import build_train_transforms
from ..data.usl import ModalityStream
from ..evaluation.features import extract_features
from ..evaluation.ranking import non_finite_rows
from ..utils.logging import get_logger
from ..utils.progress import progress_bar
from .checkpoint import CheckpointError, load_checkpoint
from .distributed import DistInfo, gather_ordered, shard_indices

log = get_logger(__name__)


def dataset_fingerprint(splits: DatasetSplits) -> str:
    """Hash of the training list (relative paths, ids, cameras): a checkpoint remembers
    which dataset copy and RegDB trial it was trained on."""
    h = hashlib.sha1(splits.name.encode())
    for s in splits.train:
        h.update(f"{Path(s.path).relative_to(splits.root)}|{s.pid}|{s.camid}\n".encode())
    return h.hexdigest()[:16]


def dataset_trial(cfg: RunCfg) -> int | None:
    return getattr(cfg.data.dataset, "trial", None)


def train_images(cfg: RunCfg, samples) -> np.ndarray | None:
    """The decoded-image cache of ``samples`` (None when ``data.cache`` is off)."""
    d = cfg.data
    if not d.cache:
        return None
    cache_dir = d.cache_dir or Path(cfg.output_dir).parent / ".cache"
    with progress_bar("decoding images into the cache", len(samples)) as adv:
        return build_cache([s.path for s in samples], d.height, d.width, cache_dir, adv)


def train_transforms(cfg: RunCfg) -> dict:
    d, a = cfg.data, cfg.data.augment
    return build_train_transforms(
        d.height,
        d.width,
        pad=a.pad,
        flip=a.flip,
        random_erasing=a.random_erasing,
        channel_erasing=a.channel_erasing,
        erasing_draw=a.erasing_draw,
        channel_exchange=a.channel_exchange,
        adaptive_gray=a.adaptive_gray,
    )


@dataclass
class TrainData:
    loader: torch.utils.data.DataLoader
    num_classes: int


def build_train_data(cfg: RunCfg, info: DistInfo, splits: DatasetSplits) -> TrainData:
    """Supervised data: identity labels, P ids × (K visible + K infrared) batches."""
    mapping = relabel(splits.train)
    labels = [mapping[s.pid] for s in splits.train]
    d = cfg.data
    dataset = ImageDataset(
        splits.train, train_transforms(cfg), labels, train_images(cfg, splits.train)
    )
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
    return TrainData(
        make_loader(
            dataset, batch_sampler=sampler, workers=d.workers, seed=cfg.train.seed, rank=info.rank
        ),
        len(mapping),
    )


def build_streams(cfg: RunCfg, splits: DatasetSplits) -> dict[int, ModalityStream]:
    """Unsupervised data: one stream per modality. Identities are never used for training;
    they only feed the cluster-quality diagnostics."""
    images = train_images(cfg, splits.train)
    tf = train_transforms(cfg)
    out, offset = {}, 0
    for m in Modality:  # visible first: batch indices are global, visible then infrared
        idx = [i for i, s in enumerate(splits.train) if s.modality is m]
        out[MODALITY_INDEX[m]] = ModalityStream(
            m,
            [splits.train[i] for i in idx],
            tf,
            None if images is None else images[idx],
            offset=offset,
        )
        offset += len(idx)
    return out


def build_optimizer(cfg: RunCfg, method) -> torch.optim.Optimizer:
    t = cfg.train
    groups = method.param_groups(t.lr, t.backbone_lr_mult)
    if t.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, nesterov=t.nesterov
        )
    if t.optimizer == "adamw":  # decoupled weight decay (MUN)
        return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.Adam(groups, lr=t.lr, weight_decay=t.weight_decay)


def featurizer(model, cfg: RunCfg, device, info: DistInfo, clustering: bool = False):
    """``samples -> (N, D)`` features, sharded over ranks and gathered in order.

    Evaluation: L2-normalised BN feature (flip-averaged and re-normalised if
    ``eval.flip``). Clustering: flip-averaged normalised features *not* re-normalised, as
    the unsupervised community code clusters them. ``corrupt``: the robustness hook of
    ``extract_features``.
    """
    flip = cfg.method.cluster.flip if clustering else cfg.eval.flip

    def featurize(samples, images=None, corrupt=None):
        idx = shard_indices(len(samples), info.rank, info.world_size)
        local = extract_features(
            model,
            [samples[i] for i in idx],
            cfg.data.height,
            cfg.data.width,
            batch_size=cfg.eval.batch_size,
            flip=flip,
            renormalize=not clustering,
            # eval.feature: the BNNeck's output (AGW) or the pooled feature before it
            which="pool" if not clustering and cfg.eval.feature == "pool" else "feat",
            device=device,
            amp=cfg.train.amp,
            desc="clustering features" if clustering else "features",
            images=images,
            image_index=idx,
            corrupt=corrupt,
        )
        feats = gather_ordered(torch.from_numpy(local), len(samples), info.world_size).numpy()
        bad = non_finite_rows(feats)
        if bad.any():  # never ranked or clustered: NaN ties would score (docs/evaluation.md)
            raise FloatingPointError(
                f"the model gave NaN/Inf features for {int(bad.sum())} of {len(samples)} "
                f"image(s) (first: {samples[int(np.argmax(bad))].path}); its weights overflow"
            )
        return feats

    return featurize


def init_weights(model, ref, key: str = "train.init_from") -> None:
    """Model weights from a vireid checkpoint (stage 1 → stage 2); ``ref`` is a path or a
    ``recipe:`` reference (``config.chains``). The classifier is skipped when its class
    count differs. ``key``: the config key that named ``ref``."""
    from ..config.chains import resolve_checkpoint

    resolved = resolve_checkpoint(ref)
    if not resolved.path.is_file():
        raise CheckpointError(resolved.missing_message(key))
    path = resolved.path
    state = load_checkpoint(path)
    sd = {k.removeprefix("model."): v for k, v in state["model"].items() if k.startswith("model.")}
    own = model.state_dict()
    sd = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in sd and not k.startswith("classifier.")]
    if missing:
        raise CheckpointError(
            f"{key}={path}: no weights for {missing[:3]}; "
            "expected a checkpoint of the same model (arch, non_local, ...)"
        )
    model.load_state_dict(sd, strict=False)
    log.info("initialised the model from %s", path)


def stage_model(cfg: RunCfg, path, device) -> torch.nn.Module:
    """The network of an earlier stage (``path``, a vireid checkpoint), built like this
    run's model and in eval mode: its features feed offline pseudo-labels."""
    from ..models import build_model

    model = build_model(cfg.model.model_copy(update={"pretrained": None}), 0)
    init_weights(model, path, "method.labels_from")
    return model.to(device).eval()
