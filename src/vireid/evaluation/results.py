"""Result tables: rich for the terminal, JSON and a one-line CSV for papers."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..utils.io import write_json, write_text
from .evaluator import METRICS, ProtocolResult


def results_table(result: ProtocolResult, title: str | None = None) -> Table:
    n = len(result.trials)
    extras = [
        " (re-ranked)" if result.rerank else "",
        f" (trained on {result.trained_on})" if _cross(result) else "",
        f" [epoch {result.selected_on_test} SELECTED ON THE TEST SET]"
        if result.selected_on_test is not None
        else "",
    ]
    title = title or f"{result.protocol}: mean ± std over {n} trial(s)" + "".join(extras)
    table = Table(title=Text(title))  # plain text: rich would read "[epoch …]" as a tag
    for m in METRICS:
        table.add_column(m, justify="right")
    t = result.table()
    table.add_row(*[f"{t[m]['mean']:.2f} ± {t[m]['std']:.2f}" if m in t else "-" for m in METRICS])
    return table


def _cross(result: ProtocolResult) -> bool:
    from ..data.protocols import get_protocol

    return result.trained_on is not None and result.trained_on != (
        get_protocol(result.protocol).dataset
    )


def comparison_table(results: dict[str, ProtocolResult], title: str) -> Table:
    """One row per model (label → result), mean ± std over trials."""
    table = Table(title=Text(title))
    table.add_column("model")
    for m in METRICS:
        table.add_column(m, justify="right")
    for label, result in results.items():
        t = result.table()
        table.add_row(
            Text(label),
            *[f"{t[m]['mean']:.2f} ± {t[m]['std']:.2f}" if m in t else "-" for m in METRICS],
        )
    return table


def write_results(out_dir: str | Path, result: ProtocolResult) -> None:
    out = Path(out_dir)
    write_json(out / "results.json", result.to_json())
    write_text(
        out / "results.csv", "protocol," + ",".join(METRICS) + "\n" + result.csv_line() + "\n"
    )
