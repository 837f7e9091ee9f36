"""Robustness tables: rich for the terminal, Markdown for docs, both from the
``robustness.json`` dict (so a saved result renders like a fresh one)."""

from __future__ import annotations

from rich.table import Table

from .robustness import SUMMARY_METRICS


def summary_rows(res: dict) -> list[tuple[str, list[str]]]:
    """(label, cells) rows: clean, the random mix (mean ± std over trials), the sweep's
    average over every (type, severity), and mCE / relative mCE when computed."""

    def pm(part: dict) -> list[str]:
        return [f"{part['mean'][m]:.2f} ± {part['std'][m]:.2f}" for m in SUMMARY_METRICS]

    rows = [("clean", pm(res["clean"])), ("corrupted (random mix)", pm(res["corrupted"]))]
    if res.get("sweep_mean"):
        rows.append(
            ("corrupted (sweep average)", [f"{res['sweep_mean'][m]:.2f}" for m in SUMMARY_METRICS])
        )
    if res.get("mce"):
        mce = res["mce"]
        fmt = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
        rows.append((f"mCE vs {mce['reference']}", [fmt(mce[m]["mCE"]) for m in SUMMARY_METRICS]))
        rows.append(
            (
                f"relative mCE vs {mce['reference']}",
                [fmt(mce[m]["relative_mCE"]) for m in SUMMARY_METRICS],
            )
        )
    return rows


def sweep_rows(res: dict, metric: str = "mAP") -> tuple[list[str], list[list[str]]]:
    """Header and one row per type: ``metric`` at each severity and their mean."""
    sweep = res.get("sweep") or {}
    sevs = [str(s) for s in res["plan"]["severities"]]
    header = ["corruption", *[f"s{s}" for s in sevs], "mean"]
    rows = []
    for name, by_sev in sweep.items():
        vals = [by_sev[s][metric] for s in sevs]
        rows.append([name, *[f"{v:.2f}" for v in vals], f"{sum(vals) / len(vals):.2f}"])
    return header, rows


def robustness_tables(res: dict, metric: str = "mAP") -> list[Table]:
    plan = res["plan"]
    title = (
        f"{res['protocol']}: visible side corrupted, {len(plan['types'])} type(s) × "
        f"severities {plan['severities']}, seed {plan['seed']}, {len(res['trials'])} trial(s)"
    )
    top = Table(title=title)
    top.add_column("")
    for m in SUMMARY_METRICS:
        top.add_column(m, justify="right")
    for label, cells in summary_rows(res):
        top.add_row(label, *cells)
    out = [top]
    header, rows = sweep_rows(res, metric)
    if rows:
        t = Table(title=f"{metric} per corruption type and severity (mean over trials)")
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*r)
        out.append(t)
    return out


def markdown_tables(res: dict, metric: str = "mAP") -> str:
    lines = ["| | " + " | ".join(SUMMARY_METRICS) + " |", "|---" * 4 + "|"]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in summary_rows(res)]
    header, rows = sweep_rows(res, metric)
    if rows:
        lines += ["", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
