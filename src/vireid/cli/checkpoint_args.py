"""What several commands do with a checkpoint argument: parse ``--trials`` and ``--root``,
and pick the protocol trials it may be evaluated on (loading it:
``engine.restore.load_model``)."""

from __future__ import annotations

from pathlib import Path


def parse_trials(text: str) -> str | int:
    if text == "all":
        return "all"
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"--trials {text!r}: expected 'all' or a number")
    return int(text)


def parse_roots(values: list[str] | None) -> dict[str | None, Path]:
    """``--root PATH`` (every protocol) and ``--root DATASET=PATH`` (that dataset's
    protocols, e.g. ``regdb=/data/RegDB``) → {dataset or None: path}."""
    roots: dict[str | None, Path] = {}
    for v in values or []:
        name, sep, path = v.partition("=")
        key = name if sep and name and "/" not in name else None
        roots[key] = Path(path if key is not None else v)
    return roots


def check_trial(spec, trial: int | None) -> None:
    """``--trial`` must name one of the protocol's trials."""
    if trial is not None and trial not in spec.trials:
        raise ValueError(
            f"--trial {trial}: {spec.name} has trials {spec.trials[0]}..{spec.trials[-1]}"
        )


def checkpoint_trials(
    spec, checkpoint: Path, trained_on: str, trained: int | None, trial: int | None, n_trials
):
    """The trials a checkpoint may be evaluated on. A RegDB model only on the split it
    was ``trained`` on (another split's test ids are its training ids); a model trained
    on another dataset (``trained_on``) on any trial, since it saw none of RegDB's ids."""
    from ..evaluation.evaluator import resolve_trials

    check_trial(spec, trial)
    if spec.trial_is_split and spec.dataset == trained_on:
        if trial is not None and trial != trained:
            raise ValueError(
                f"{checkpoint} was trained on RegDB trial {trained}"
                f"; evaluating it on trial {trial} would test on training ids"
            )
        return [trained]
    if spec.trial_is_split:  # each split's test set is unseen: --trial one, --trials N first N
        if trial is not None:
            return resolve_trials(spec.name, trial)
        return list(spec.trials if n_trials == "all" else spec.trials[:n_trials])
    return resolve_trials(spec.name, n_trials)
