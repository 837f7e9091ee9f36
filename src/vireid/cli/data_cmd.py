"""``vireid data check NAME --root DIR``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from .common import console, friendly_errors

app = typer.Typer(help="Dataset tools.", no_args_is_help=True)


@app.command("check")
@friendly_errors
def check(
    name: str = typer.Argument(..., help="sysu_mm01 | regdb | llcm | folder"),
    root: Path = typer.Option(None, envvar="VIREID_DATA", help="dataset root"),
    trial: int = typer.Option(None, help="RegDB trial 1..10"),
    strict: bool = typer.Option(
        False, help="fail when counts differ from the published statistics"
    ),
) -> None:
    """Check a dataset copy: layout, split files, every image, and counts."""
    from rich.table import Table

    import vireid.data.datasets  # noqa: F401  (registers readers)

    from ..data.check import EXPECTED_TREES, check_dataset
    from ..utils.progress import progress_bar

    if name in EXPECTED_TREES:
        console.print(
            f"[bold]expected layout of {name}[/]\n{EXPECTED_TREES[name]}", highlight=False
        )
    with progress_bar("verifying images", None) as adv:
        rep = check_dataset(name, root, trial, adv)
    if rep.error:
        console.print(f"[bold red]error:[/] {escape(str(rep.error))}", highlight=False)
    table = Table(title=escape(f"{name} at {rep.root}"))
    for col in ("statistic", "found", "published"):
        table.add_column(col)
    for k, v in rep.counts.items():
        exp = rep.expected.get(k)
        style = "" if exp is None or exp == v else "yellow"
        table.add_row(k, f"[{style}]{v}[/]" if style else str(v), "" if exp is None else str(exp))
    if rep.counts:
        console.print(table)
    for line in rep.unreadable:
        console.print(f"[red]unreadable:[/] {escape(line)}", highlight=False)
    mism = rep.mismatches()
    if mism:
        console.print(
            f"[yellow]{len(mism)} count(s) differ from the published statistics "
            "(expected for the synthetic proxy or a partial copy)[/]"
        )
    failed = not rep.ok or (strict and bool(mism))
    console.print("[red]FAILED[/]" if failed else "[green]OK[/]")
    if failed:
        raise typer.Exit(1)
