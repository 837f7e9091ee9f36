"""Mean corruption error (mCE) and relative mCE against a reference model.

Hendrycks & Dietterich (ICLR 2019), the definition the ReID corruption benchmark adopts
from ImageNet-C, with the error E = 100 − metric (percent) of a ReID metric in place of
top-1 error::

    CE_c  = Σ_s E(f, c, s) / Σ_s E(ref, c, s)                               (× 100)
    rCE_c = Σ_s (E(f, c, s) − E(f, clean)) / Σ_s (E(ref, c, s) − E(ref, clean))
    mCE = mean_c CE_c;  relative mCE = mean_c rCE_c

over the severities s of the sweep. The reference model scores 100 by construction;
below 100 is more robust. Computed for R1, mAP and mINP (the benchmark ranks by mAP).
An undefined ratio (a reference with no error, or one that corruption did not hurt)
is reported as None and left out of the mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MCE_METRICS = ("R1", "mAP", "mINP")


def _ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else 100.0 * num / den


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def corruption_errors(
    sweep: dict, clean: dict, ref_sweep: dict, ref_clean: dict, metric: str
) -> dict:
    """``sweep[type][severity][metric]`` and ``clean[metric]`` in percent, as in
    ``robustness.json`` (severities are string keys), for this model and the reference
    → per-type CE / rCE and their means."""
    ce, rce = {}, {}
    for name, by_sev in sweep.items():
        sevs = list(by_sev)
        err = [100.0 - by_sev[s][metric] for s in sevs]
        ref = [100.0 - ref_sweep[name][s][metric] for s in sevs]
        ce[name] = _ratio(sum(err), sum(ref))
        e0, r0 = 100.0 - clean[metric], 100.0 - ref_clean[metric]
        rce[name] = _ratio(sum(e - e0 for e in err), sum(r - r0 for r in ref))
    return {
        "mCE": _mean(list(ce.values())),
        "relative_mCE": _mean(list(rce.values())),
        "CE": ce,
        "rCE": rce,
    }


def load_reference(path: str | Path, mine: dict) -> dict:
    """Read a reference ``robustness.json`` and check it was made under the same
    protocol, trials, seed and a sweep covering ours (otherwise the errors do not
    compare)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--mce-reference {path} does not exist")
    try:
        ref = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--mce-reference {path}: not JSON ({e})") from None
    if not isinstance(ref, dict) or not ref.get("sweep"):
        raise ValueError(
            f"--mce-reference {path}: no sweep; expected the robustness.json of "
            "`vireid eval CHECKPOINT --corrupt ... --sweep --out DIR`"
        )
    checks = {
        "protocol": (ref.get("protocol"), mine["protocol"]),
        "trials": (ref.get("trials"), mine["trials"]),
        "seed": (ref.get("plan", {}).get("seed"), mine["plan"]["seed"]),
    }
    for key, (theirs, ours) in checks.items():
        if theirs != ours:
            raise ValueError(f"--mce-reference {path}: {key} is {theirs!r}, this run's is {ours!r}")
    for name, by_sev in mine["sweep"].items():
        missing = [s for s in by_sev if s not in ref["sweep"].get(name, {})]
        if missing:
            raise ValueError(
                f"--mce-reference {path}: no {name} at severities {missing} in its sweep"
            )
    return ref


def mce_summary(mine: dict, ref: dict, reference_name: str) -> dict:
    """CE / rCE / mCE / relative mCE of ``mine`` against ``ref`` (both robustness.json
    dicts) for every metric of ``MCE_METRICS``."""
    out = {"reference": reference_name}
    for m in MCE_METRICS:
        out[m] = corruption_errors(
            mine["sweep"], mine["clean"]["mean"], ref["sweep"], ref["clean"]["mean"], m
        )
    return out
