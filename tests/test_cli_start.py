"""The command line's surface: start-up without torch, --version, help text, and messages
that print brackets as they are (rich markup would swallow them)."""

import subprocess
import sys

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from vireid.cli import app
from vireid.cli.common import friendly_errors

runner = CliRunner()

NO_TORCH = """
import sys
from vireid.cli import app
try:
    app({args!r}, prog_name="vireid")
except SystemExit as e:
    code = e.code
print("exit", code, "torch" in sys.modules)
"""


@pytest.mark.parametrize(
    "args,code",
    [
        (["--help"], 0),
        (["--version"], 0),
        (["config", "validate", "configs/tests/instant.yaml", "train.epoch=3"], 2),
        (["train", "no/such/recipe.yaml"], 2),
        (["eval"], 2),
    ],
    ids=["help", "version", "config-error", "missing-recipe", "eval-no-args"],
)
def test_help_and_errors_answer_without_importing_torch(args, code):
    """torch's import takes seconds: commands that only print must not pay for it."""
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH.format(args=args)], capture_output=True, text=True
    )
    assert out.stdout.split()[-3:] == ["exit", str(code), "False"], out.stdout + out.stderr


def test_version():
    from vireid import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"vireid {__version__}"


def test_help_joins_wrapped_docstrings_and_shows_code_without_backticks():
    r = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    # the docstring is wrapped after "disjoint from" in the source: one line in the help
    assert "population (identities disjoint from the benchmark's) and write weights" in r.output
    assert "that model.pretrained accepts" in r.output
    for cmd in ("index", "serve", "pretrain", "synth"):
        out = runner.invoke(app, [cmd, "--help"], env={"COLUMNS": "250"}).output
        assert "``" not in out and "`vireid" not in out, cmd
    serve = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "250"}).output
    assert "Bearer <token>" in serve and "<index>_uploads/" in serve


def test_errors_print_brackets_as_written():
    tiny = typer.Typer()

    @tiny.command()
    @friendly_errors
    def fail() -> None:
        raise ValueError("key train.milestones=[40, 60]: [epoch 3 SELECTED ON THE TEST SET]")

    r = runner.invoke(tiny, [])
    assert r.exit_code == 2
    assert "[40, 60]: [epoch 3 SELECTED ON THE TEST SET]" in r.output


def test_results_title_keeps_the_selected_on_test_warning():
    from vireid.evaluation.evaluator import ProtocolResult
    from vireid.evaluation.results import comparison_table, results_table

    res = ProtocolResult("sysu/all/single", [], selected_on_test=7)
    console = Console(record=True, width=200)
    console.print(results_table(res))
    console.print(comparison_table({"init [synthetic]": res}, "[x] t"))
    text = " ".join(console.export_text().split())  # a title wraps to the table's width
    assert "[epoch 7 SELECTED ON THE TEST SET]" in text
    assert "init [synthetic]" in text and "[x] t" in text


def test_tables_keep_their_rows_whole_off_a_terminal():
    """Off a terminal (``make demo > file``) rich would squeeze a table into 80 columns,
    wrapping values and cutting labels ("synthet…")."""
    code = (
        "from vireid.cli.common import console\n"
        "from vireid.evaluation.evaluator import ProtocolResult, TrialResult\n"
        "from vireid.evaluation.ranking import EvalResult\n"
        "from vireid.evaluation.results import comparison_table\n"
        "import numpy as np\n"
        "r = EvalResult(np.linspace(0.5, 1, 50), 0.4123, 0.2, 3)\n"
        "res = ProtocolResult('sysu/all/single', [TrialResult(0, r, [], [], None, None)])\n"
        "rows = {'synthetic init, no training': res, 'trained: agw, 10 epochs': res}\n"
        "console.print(comparison_table(rows, 'sysu/all/single: mean ± std over trials'))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    ).stdout
    row = next(x for x in out.splitlines() if "synthetic init, no training" in x)
    assert row.count("±") == 6, out
