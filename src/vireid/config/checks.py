"""Checks across keys of a run config, made when the config is loaded: a setting that
only the end of a run would read (``eval.protocol`` after the last epoch) must fail
before the first one."""

from __future__ import annotations

from .schema import RunCfg


class CrossCheckError(ValueError):
    """Two or more keys of a run config do not fit together (raised as a ConfigError)."""


def check_run(cfg: RunCfg) -> None:
    """Raise ``CrossCheckError`` naming the keys when ``cfg`` cannot run to its end."""
    from ..data.protocols import get_protocol
    from ..registry import PROTOCOLS, RegistryError

    ev, dataset = cfg.eval, cfg.data.dataset.name
    try:
        spec = get_protocol(ev.protocol)
    except RegistryError as e:
        raise CrossCheckError(f"eval.protocol: {e}") from None
    if spec.dataset != dataset:
        fits = [n for n in PROTOCOLS.names() if get_protocol(n).dataset == dataset]
        raise CrossCheckError(
            f"eval.protocol={spec.name} evaluates {spec.dataset} but data.dataset.name="
            f"{dataset}; expected one of: {', '.join(fits)}"
        )
    if isinstance(ev.trials, int) and ev.trials < 1:  # more than there are: all of them
        raise CrossCheckError(
            f"eval.trials={ev.trials}: expected 'all' or a number of trials >= 1 "
            f"({spec.name} has {len(spec.trials)})"
        )
    if ev.select_on_test and ev.every == 0:
        raise CrossCheckError(
            "eval.select_on_test=true needs eval.every > 0: it picks the epoch among the "
            "monitored evaluations"
        )
