"""Protocol evaluation over trials: build the lists, extract (or look up) features once,
score every trial, report mean ± std."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.protocols import get_protocol, query_gallery
from ..data.records import Sample
from .ranking import EvalResult, evaluate, evaluate_features
from .rerank import rerank_features
from .test_time import TestTime, query_expansion

METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")


@dataclass
class TrialResult:
    trial: int
    result: EvalResult
    query: list[Sample] = field(repr=False)
    gallery: list[Sample] = field(repr=False)
    q_feats: np.ndarray = field(repr=False)
    g_feats: np.ndarray = field(repr=False)


@dataclass
class ProtocolResult:
    protocol: str
    trials: list[TrialResult]
    rerank: bool = False
    selected_on_test: int | None = None  # epoch picked on the test set (paper reproduction)
    trained_on: str | None = None  # the training dataset (cross-dataset when it differs)
    test_time: TestTime = field(default_factory=TestTime)  # re-ranking / query expansion

    def table(self) -> dict[str, dict[str, float]]:
        """metric → {"mean", "std"} over trials, in percent (as papers report)."""
        rows = [t.result.summary() for t in self.trials]
        out = {}
        for m in METRICS:
            vals = np.array([r[m] for r in rows if m in r]) * 100
            if len(vals):
                out[m] = {"mean": float(vals.mean()), "std": float(vals.std())}
        return out

    def to_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "train_dataset": self.trained_on,
            "test_dataset": _dataset_of(self.protocol),
            "rerank": self.rerank,
            "test_time": self.test_time.to_json(),
            "selected_on_test_epoch": self.selected_on_test,
            "trials": [
                {
                    "trial": t.trial,
                    "num_valid": t.result.num_valid,
                    "num_query": len(t.query),
                    "num_gallery": len(t.gallery),
                    **{k: v * 100 for k, v in t.result.summary().items()},
                }
                for t in self.trials
            ],
            "mean": {k: v["mean"] for k, v in self.table().items()},
            "std": {k: v["std"] for k, v in self.table().items()},
        }

    def csv_line(self) -> str:
        t = self.table()
        return ",".join([self.protocol] + [f"{t[m]['mean']:.2f}" for m in METRICS if m in t])


def _dataset_of(protocol: str) -> str | None:
    try:
        return get_protocol(protocol).dataset
    except KeyError:  # a name from an old results file
        return None


def resolve_trials(protocol: str, trials: str | int | Sequence[int]) -> list[int]:
    spec = get_protocol(protocol)
    if trials == "all":
        return list(spec.trials)
    if isinstance(trials, int):
        if spec.trial_is_split:  # RegDB: a trial is a split, the model is tied to it
            return [trials]
        return list(spec.trials[:trials])
    return list(trials)


def score(
    rule: str,
    q: list[Sample],
    g: list[Sample],
    qf: np.ndarray,
    gf: np.ndarray,
    rerank: bool | TestTime = False,
) -> EvalResult:
    """Metrics of one query/gallery pair; ``rerank``: True (re-ranking with the community
    settings) or a ``TestTime`` (re-ranking k1/k2/λ, query expansion)."""
    tt = TestTime.of(rerank)
    qp, gp = np.array([s.pid for s in q]), np.array([s.pid for s in g])
    qc, gc = np.array([s.camid for s in q]), np.array([s.camid for s in g])
    if tt.qe_k:
        qf, gf = query_expansion(qf, gf, tt.qe_k, tt.qe_alpha)
    if tt.rerank:
        dist = rerank_features(qf, gf, tt.k1, tt.k2, tt.lam)
        return evaluate(dist, qp, gp, qc, gc, rule)
    return evaluate_features(qf, gf, qp, gp, qc, gc, rule)


def protocol_lists(
    protocol: str, root, trials: Sequence[int], manifest=None
) -> tuple[dict[int, tuple[list[Sample], list[Sample]]], list[Sample]]:
    """Each trial's (query, gallery) lists and every distinct image of all trials, in
    first-seen order (the rows a featurizer is asked for)."""
    spec = get_protocol(protocol)
    lists = {t: query_gallery(spec, root, t, manifest) for t in trials}
    unique: dict[str, Sample] = {}
    for q, g in lists.values():
        for s in (*q, *g):
            unique.setdefault(s.path, s)
    return lists, list(unique.values())


def score_lists(
    protocol: str,
    lists: dict[int, tuple[list[Sample], list[Sample]]],
    ordered: list[Sample],
    feats: np.ndarray,
    rerank: bool | TestTime = False,
) -> ProtocolResult:
    """Score every trial from ``feats`` (N, D), row i being the feature of ``ordered[i]``."""
    spec = get_protocol(protocol)
    row = {s.path: i for i, s in enumerate(ordered)}
    out = []
    for t, (q, g) in lists.items():
        qf = feats[[row[s.path] for s in q]]
        gf = feats[[row[s.path] for s in g]]
        out.append(TrialResult(t, score(spec.rule, q, g, qf, gf, rerank), q, g, qf, gf))
    tt = TestTime.of(rerank)
    return ProtocolResult(spec.name, out, tt.rerank, test_time=tt)


def evaluate_protocol(
    protocol: str,
    root,
    trials: Sequence[int],
    featurize: Callable[[list[Sample]], np.ndarray],
    rerank: bool | TestTime = False,
    manifest=None,
) -> ProtocolResult:
    """``featurize(samples) -> (N, D)`` is called once on every distinct image of all
    trials, so query features are shared across gallery draws (as AGW's ``test.py``)."""
    lists, ordered = protocol_lists(protocol, root, trials, manifest)
    return score_lists(protocol, lists, ordered, featurize(ordered), rerank)
