"""``vireid eval CHECKPOINT --corrupt ...``: corruption robustness (SYSU-MM01-C, RegDB-C,
LLCM-C). The checkpoint's model is re-run on the protocol's visible images, corrupted
on the fly; the clean result is the plain ``vireid eval`` one."""

from __future__ import annotations

from pathlib import Path

from ..evaluation.corruption import CorruptionPlan, parse_corruptions, parse_severities
from ..evaluation.corruption.apply import require_library
from ..evaluation.corruption.mce import load_reference, mce_summary
from ..evaluation.corruption.robustness import RobustnessResult, evaluate_robustness


def parse_plan(corrupt: str, severity: str, seed: int) -> CorruptionPlan:
    if not 0 <= seed < 2**32:
        raise ValueError(f"--corrupt-seed {seed}: expected 0 ≤ seed < 2**32")
    plan = CorruptionPlan(parse_corruptions(corrupt), parse_severities(severity), seed)
    require_library(plan.types)
    return plan


def run_corrupted(
    checkpoint: Path,
    plan: CorruptionPlan,
    *,
    protocol: str | None,
    root,
    manifest,
    n_trials,
    trial: int | None,
    rerank: bool,
    sweep: bool,
    mce_reference: Path | None,
) -> tuple[RobustnessResult, dict]:
    """The result and its ``robustness.json`` dict (with mCE when a reference is given)."""
    from ..data.protocols import get_protocol
    from ..engine.builders import featurizer
    from ..engine.distributed import DistInfo
    from ..engine.restore import load_model
    from ..engine.run import evaluation_root
    from .checkpoint_args import checkpoint_trials

    if mce_reference is not None and not sweep:
        raise ValueError(
            "--mce-reference needs --sweep: mCE sums each type's errors over severities"
        )
    model, cfg, state, device = load_model(checkpoint)
    if protocol:
        cfg.eval.protocol = protocol
    spec = get_protocol(protocol or cfg.eval.protocol)
    trained_on = cfg.data.dataset.name
    chosen = checkpoint_trials(spec, checkpoint, trained_on, state.get("trial"), trial, n_trials)
    root = evaluation_root(cfg, spec, root)
    ref = None
    if mce_reference is not None:  # checked before the sweep, which may take long
        expected = {
            "protocol": spec.name,
            "trials": chosen,
            "plan": plan.to_json(),
            "sweep": {t: dict.fromkeys(map(str, plan.severities)) for t in plan.types},
        }
        ref = load_reference(mce_reference, expected)
    result = evaluate_robustness(
        spec.name,
        root,
        chosen,
        featurizer(model, cfg, device, DistInfo()),
        plan,
        cfg.data.height,
        cfg.data.width,
        sweep=sweep,
        rerank=rerank,
        manifest=manifest
        or (getattr(cfg.data.dataset, "manifest", None) if spec.dataset == trained_on else None),
    )
    for r in (result.clean, result.corrupted):  # the results name the training dataset
        r.trained_on = trained_on
    data = {"checkpoint": str(checkpoint), **result.to_json()}
    if ref is not None:
        result.mce = data["mce"] = mce_summary(
            data, ref, ref.get("checkpoint") or str(mce_reference)
        )
    return result, data


def corrupted_eval(checkpoint: Path, plan: CorruptionPlan, *, report, out, **kwargs) -> None:
    """Run, print the clean table (``vireid eval``'s) and the robustness tables, write
    ``results.json``/``.csv`` (clean) and ``robustness.json`` to ``out``, the rank report
    of the random-mix run (corrupted thumbnails) to ``report``."""
    from ..evaluation.corruption.tables import robustness_tables
    from ..evaluation.results import results_table, write_results
    from ..utils.io import write_json
    from .common import console

    result, data = run_corrupted(checkpoint, plan, **kwargs)
    n = len(result.trials)
    console.print(
        results_table(result.clean, f"{result.protocol}: clean, mean ± std over {n} trial(s)")
    )
    for table in robustness_tables(data):
        console.print(table)
    console.print("csv: " + result.clean.csv_line(), highlight=False)
    if out:
        write_results(out, result.clean)  # the plain `vireid eval` files
        write_json(Path(out) / "robustness.json", data)
    if report:
        from ..report import write_report

        path = write_report(report, result.corrupted, robustness=data, image_for=result.mixer.image)
        console.print(f"report: {path}", highlight=False)
