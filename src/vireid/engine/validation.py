"""Model selection on a validation split (``data.val_ids``): evaluated every
``eval.every`` epochs in place of test trial 0, and ``best.pt`` keeps the epoch with the
best validation mAP. The reported result stays the last epoch's test evaluation; the test
set never chooses anything here (``eval.select_on_test`` does, and says so)."""

from __future__ import annotations

from pathlib import Path

from ..data.holdout import ValidationSplit
from ..evaluation.evaluator import ProtocolResult, TrialResult, score
from ..utils.io import write_json
from ..utils.logging import get_logger
from .builders import featurizer
from .checkpoint import save_checkpoint
from .hooks import CheckpointHook, Hook

log = get_logger(__name__)
BEST_NAME = "best.pt"


def validation_eval(model, cfg, device, info, val: ValidationSplit, rule: str):
    """``evaluate_fn`` for ``EvalHook``: the validation split's metrics table (percent)."""
    featurize = featurizer(model, cfg, device, info)

    def evaluate(trainer, quick=True):
        feats = featurize([*val.query, *val.gallery])
        nq = len(val.query)
        qf, gf = feats[:nq], feats[nq:]
        res = score(rule, val.query, val.gallery, qf, gf)
        trial = TrialResult(0, res, val.query, val.gallery, qf, gf)
        return ProtocolResult("validation", [trial]).table()

    return evaluate


class BestCheckpointHook(Hook):
    """After ``EvalHook``: when this epoch's ``val_mAP`` beats every earlier one, the
    weights go to ``best.pt`` (a full checkpoint, like ``last.pt``) and ``best.json``
    records the epoch and its validation metrics."""

    def __init__(self, like: CheckpointHook) -> None:
        self.like = like
        self.path = Path(like.path).with_name(BEST_NAME)
        self.best = float("-inf")

    def after_epoch(self, trainer) -> None:
        val = trainer.epoch_extras.get("val_mAP")
        if val is None or val <= self.best:
            return
        self.best = val
        if not trainer.is_main:
            return
        save_checkpoint(
            self.path,
            model=trainer.method,
            optimizer=trainer.optimizer,
            scaler=trainer.scaler,
            epoch=trainer.epoch,
            step=trainer.step,
            config=self.like.config,
            fingerprint=self.like.fingerprint,
            trial=self.like.trial,
            extra=trainer.method.extra_state(),
        )
        metrics = {k[4:]: v for k, v in trainer.epoch_extras.items() if k.startswith("val_")}
        write_json(self.path.with_suffix(".json"), {"epoch": trainer.epoch, "validation": metrics})
        log.info("best.pt: epoch %d, validation mAP %.2f", trainer.epoch, val)
