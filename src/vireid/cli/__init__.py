"""The ``vireid`` command line (typer). One thin module per command.

Command modules import only typer and the standard library at the top, and everything
else inside the command: ``vireid --help`` and an argument or config error then answer
without importing torch (benchmarks/bench_cli.py measures it)."""

from __future__ import annotations

import typer

from . import (
    config_cmd,
    data_cmd,
    demo_cmd,
    env_cmd,
    eval_cmd,
    export_cmd,
    import_cmd,
    index_cmd,
    info_cmd,
    list_cmd,
    pretrain_cmd,
    search_cmd,
    serve_cmd,
    synth_cmd,
    train_cmd,
)

app = typer.Typer(
    help="vireid: visible-infrared person re-identification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # docstrings are read as Markdown: wrapped lines join into paragraphs (a blank line
    # starts a new one) and ``code`` shows as code, not as raw backticks
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from .. import __version__

        try:
            installed = version("vireid")
        except PackageNotFoundError:  # run from a checkout without installing
            installed = __version__
        typer.echo(f"vireid {installed}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """vireid: visible-infrared person re-identification."""


app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.command("list")(list_cmd.list_cmd)
app.command("env")(env_cmd.env_cmd)
app.command("info")(info_cmd.info_cmd)
app.command("synth")(synth_cmd.synth_cmd)
app.command("pretrain")(pretrain_cmd.pretrain_cmd)
app.command("eval")(eval_cmd.eval_cmd)
app.command("train")(train_cmd.train_cmd)
app.command("export")(export_cmd.export_cmd)
app.command("import")(import_cmd.import_cmd)
app.command("index")(index_cmd.index_cmd)
app.command("search")(search_cmd.search_cmd)
app.command("serve")(serve_cmd.serve_cmd)
app.command("demo")(demo_cmd.demo_cmd)


def main() -> None:
    app()
