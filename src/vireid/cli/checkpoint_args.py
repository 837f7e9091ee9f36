"""What several commands do with a checkpoint argument: parse ``--trials`` and pick the
protocol trials it may be evaluated on (loading it: ``engine.restore.load_model``)."""

from __future__ import annotations

from pathlib import Path


def parse_trials(text: str) -> str | int:
    if text == "all":
        return "all"
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"--trials {text!r}: expected 'all' or a number")
    return int(text)


def check_trial(spec, trial: int | None) -> None:
    """``--trial`` must name one of the protocol's trials."""
    if trial is not None and trial not in spec.trials:
        raise ValueError(
            f"--trial {trial}: {spec.name} has trials {spec.trials[0]}..{spec.trials[-1]}"
        )


def checkpoint_trials(spec, checkpoint: Path, trained: int | None, trial: int | None, n_trials):
    """The trials a checkpoint may be evaluated on: RegDB models only on the split they
    were ``trained`` on (another split's test ids are its training ids)."""
    from ..evaluation.evaluator import resolve_trials

    check_trial(spec, trial)
    if spec.trial_is_split:
        if trained is None:
            raise ValueError(
                f"{checkpoint} records no RegDB trial (not trained on RegDB); {spec.name} "
                "evaluates a model only on the split it was trained on"
            )
        if trial is not None and trial != trained:
            raise ValueError(
                f"{checkpoint} was trained on RegDB trial {trained}"
                f"; evaluating it on trial {trial} would test on training ids"
            )
        return [trained]
    return resolve_trials(spec.name, n_trials)
