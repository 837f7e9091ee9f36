"""The ``vireid`` command line (typer). One thin module per command."""

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
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.command("list")(list_cmd.list_cmd)
app.command("env")(env_cmd.env_cmd)
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
