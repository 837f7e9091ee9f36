"""The one-screen report of ``vireid train RECIPE --smoke``."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..engine.smoke import SmokeReport, StageResult


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _terms(row: dict) -> str:
    """Computed loss terms; one that was exactly 0 (e.g. ClusterNCE over a single
    cluster, as random-init features give) is dimmed."""
    active = set(row.get("terms", []))
    names = [t if t in active else f"[dim]{t}=0[/]" for t in row.get("terms_computed", [])]
    return ", ".join(names) or "[red]none[/]"


def _epochs(stage: StageResult) -> Table:
    t = Table(title=f"{stage.recipe.name} ({stage.plan.epochs} smoke epochs)", title_justify="left")
    for col in ("epoch", "pseudo-labels (V / I)", "matched", "loss terms", "s/step", "lr"):
        t.add_column(col)
    prev = 0
    for k, row in enumerate(stage.rows):
        steps = row["step"] - prev
        prev = row["step"]
        clusters = (
            f"{row['visible_clusters']:.0f} / {row['infrared_clusters']:.0f}"
            if "visible_clusters" in row
            else ("frozen" if "pseudo_label_seconds" in row else "-")
        )
        matched = "yes" if any(k.startswith(("cross_ARI", "cross_pairs")) for k in row) else "-"
        resumed = " (resumed)" if k == stage.resumed_at else ""
        t.add_row(
            f"{k + 1}{resumed}",
            clusters,
            matched,
            _terms(row),
            f"{row['seconds'] / max(steps, 1):.2f}" if steps else "-",
            f"{row['lr']:.3g}",
        )
    return t


def _summary(stage: StageResult) -> list[str]:
    p, lines = stage.projection, []
    shipped = ", ".join(
        f"{k} {a}→{b}" for k, (a, b) in stage.plan.changed.items() if k != "model.pretrained"
    )
    lines.append(f"  data: {stage.root}; smoke schedule: {shipped}")
    if not stage.plan.random_init:  # a random init is printed on its own, marked
        lines.append(f"  weights: {stage.plan.weights}")
    if stage.init_from:
        lines.append(f"  init_from: {stage.init_from}")
    metrics = ", ".join(f"{k} {v:.1f}" for k, v in stage.metrics.items() if k in ("R1", "mAP"))
    lines.append(
        f"  checkpoint saved after epoch {stage.resumed_at}, resumed; evaluation "
        f"{stage.protocol} (1 trial, {stage.eval_seconds:.1f} s): {metrics}"
    )
    if "total_seconds" in p:
        pl = p.get("pseudo_label_seconds")
        lines.append(
            f"  projected full recipe on this device: {_duration(p['total_seconds'])} = "
            f"{p['epochs']} epochs × {p['iters_per_epoch']} steps × {p['seconds_per_step']:.2f} s"
            + (f" + pseudo-labels ≈ {_duration(pl)} (linear in images: a floor)" if pl else "")
            + f"; evaluation not included (full size: {p['size_from']})"
        )
    elif "note" in p:
        lines.append(f"  projection: {p['note']}")
    return lines


def render_smoke(report: SmokeReport) -> Group:
    parts: list = []
    for stage in report.stages:
        if not stage.rows:  # it failed before its first epoch ended
            parts.append(Text(f"{stage.recipe.name}: did not complete", style="bold"))
            continue
        parts.append(_epochs(stage))
        parts.append(Text("\n".join(_summary(stage))))
        if stage.plan.random_init:
            parts.append(Text(f"  {stage.plan.weights}", style="bold yellow"))
    gib = report.peak_memory / 2**30
    parts.append(Text(f"device {report.device}; peak memory {gib:.2f} GiB ({report.memory_kind})"))
    if report.ok:
        parts.append(Text("smoke: OK", style="bold green"))
    else:
        parts.append(Text("smoke: FAILED\n  " + "\n  ".join(report.failures), style="bold red"))
    return Group(*parts)
