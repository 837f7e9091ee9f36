"""Robustness evaluation: clean, the community's random mix, and a per-type ×
per-severity sweep, on the protocol's visible side only.

The benchmark corrupts RGB images only (CIL-CrossModal README): on SYSU-MM01-C the
visible gallery (all-search "Mode A", indoor "Mode B"), on RegDB-C the visible query of
visible→thermal ("Mode A") and the visible gallery of thermal→visible ("Mode B"). In every
VI protocol one side is visible and the other infrared, so "the visible images" is that
side: LLCM-C corrupts the VIS gallery of ``llcm/i2v`` and the VIS gallery of ``llcm/v2i``.
Infrared features are extracted once and shared by every condition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ...data.datasets.base import resolve_root
from ...data.datasets.errors import DatasetError
from ...data.protocols import get_protocol
from ...data.records import Modality
from ...utils.logging import get_logger
from ..evaluator import ProtocolResult, protocol_lists, score_lists
from .corruptor import Corruptor
from .plan import CorruptionPlan

log = get_logger(__name__)

SUMMARY_METRICS = ("R1", "mAP", "mINP")


@dataclass
class RobustnessResult:
    protocol: str
    plan: CorruptionPlan
    clean: ProtocolResult
    corrupted: ProtocolResult  # the random mix
    # type → severity → metric → mean over trials (percent)
    sweep: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    # the mix's draws: visible images per type and per severity
    draws: dict[str, dict[str, int]] = field(default_factory=dict)
    mce: dict | None = None
    mixer: Corruptor | None = field(default=None, repr=False)  # the mix's per-image hook

    @property
    def trials(self) -> list[int]:
        return [t.trial for t in self.clean.trials]

    def sweep_mean(self) -> dict[str, float]:
        """Each metric averaged over every (type, severity) cell (ImageNet-C's average)."""
        cells = [c for by_sev in self.sweep.values() for c in by_sev.values()]
        return {m: float(np.mean([c[m] for c in cells])) for m in SUMMARY_METRICS} if cells else {}

    def to_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "trials": self.trials,
            "plan": self.plan.to_json(),
            "clean": _summary(self.clean),
            "corrupted": _summary(self.corrupted),
            "draws": self.draws,
            "sweep": {t: {str(s): c for s, c in by.items()} for t, by in self.sweep.items()},
            "sweep_mean": self.sweep_mean(),
            "mce": self.mce,
        }


def _summary(result: ProtocolResult) -> dict:
    t = result.table()
    return {k: {m: t[m][k] for m in SUMMARY_METRICS} for k in ("mean", "std")}


def evaluate_robustness(
    protocol: str,
    root,
    trials: Sequence[int],
    featurize: Callable[..., np.ndarray],
    plan: CorruptionPlan,
    height: int,
    width: int,
    *,
    sweep: bool = False,
    rerank: bool = False,
    manifest=None,
) -> RobustnessResult:
    """``featurize(samples, corrupt=None) -> (N, D)``; ``height``/``width``: the model's
    test size, at which images are corrupted (as the benchmark does at 288 × 144)."""
    spec = get_protocol(protocol)
    lists, ordered = protocol_lists(spec.name, root, trials, manifest)
    feats = featurize(ordered)
    clean = score_lists(spec.name, lists, ordered, feats, rerank)
    visible = [i for i, s in enumerate(ordered) if s.modality is Modality.VISIBLE]
    if not visible:
        raise DatasetError(f"protocol {spec.name}: no visible images to corrupt")
    key_root = None if spec.dataset == "folder" else str(resolve_root(root, spec.dataset))
    targets = [ordered[i] for i in visible]

    def corrupted(fixed: tuple[str, int] | None) -> ProtocolResult:
        hook = Corruptor(plan, height, width, key_root, fixed)
        mixed = feats.copy()
        mixed[visible] = featurize(targets, corrupt=hook)
        return score_lists(spec.name, lists, ordered, mixed, rerank)

    mix = corrupted(None)
    mixer = Corruptor(plan, height, width, key_root)
    drawn = [mixer.assignment(s) for s in targets]
    by_type, by_sev = Counter(d[0] for d in drawn), Counter(d[1] for d in drawn)
    draws = {
        "types": {n: by_type.get(n, 0) for n in plan.types},
        "severities": {str(s): by_sev.get(s, 0) for s in plan.severities},
    }
    cells: dict[str, dict[int, dict[str, float]]] = {}
    if sweep:
        for name in plan.types:
            cells[name] = {}
            for sev in plan.severities:
                t = corrupted((name, sev)).table()
                cells[name][sev] = {m: t[m]["mean"] for m in SUMMARY_METRICS}
                log.info("%s severity %d: mAP %.2f", name, sev, cells[name][sev]["mAP"])
    return RobustnessResult(spec.name, plan, clean, mix, cells, draws, mixer=mixer)
