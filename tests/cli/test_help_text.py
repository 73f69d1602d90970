"""--help as a newcomer reads it: no `<bool>` on switches, no RST markup, examples whole."""

import io
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from eglpp.cli import COMMANDS as CLI_COMMANDS
from eglpp.cli import app
from eglpp.cli.run import log_lines

COMMANDS = sorted(CLI_COMMANDS)


def _help(args, columns):
    res = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns), "NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("args", [[]] + [[name] for name in COMMANDS])
def test_help_is_plain_text(args):
    text = _help(args, 1000)
    assert "<bool>" not in text, "a switch shows a type"
    assert "``" not in text and ":func:" not in text and ":mod:" not in text, "RST markup"


@pytest.mark.parametrize("name", COMMANDS)
def test_examples_are_not_split_without_a_continuation(name):
    lines = _help([name], 80).splitlines()
    for k, line in enumerate(lines[:-1]):
        if line.lstrip().startswith("eglpp ") and not line.rstrip().endswith("\\"):
            follower = lines[k + 1].strip()
            assert not follower.startswith("--") and "/" not in follower.split(" ")[0], (
                f"`eglpp {name} --help` wraps an example at 80 columns:\n{line}\n{lines[k + 1]}"
            )


def test_regression_help_lists_its_strategies_and_the_cost_of_gp():
    text = " ".join(_help(["regression"], 1000).split())
    for name in ("egl", "egl-diverse", "emcm-density", "variance-diverse-density", "gsx", "qbc"):
        assert name in text
    assert "about 50× the time of linear on 1,000 rows" in text


def test_gp_on_a_large_pool_says_it_is_slow(monkeypatch, tmp_path):
    import sys

    import numpy as np

    from eglpp.regression.datasets import Table

    cli_regression = sys.modules["eglpp.cli.regression"]  # (eglpp.cli.regression: the command)
    rng = np.random.default_rng(0)
    table = Table(rng.normal(size=(800, 3)), rng.normal(size=800), ("a", "b", "c"), "y", "t")
    monkeypatch.setattr(cli_regression, "load_dataset", lambda name: table)
    monkeypatch.setattr(cli_regression, "run_experiment", lambda *a, **k: (_ for _ in ()).throw(
        SystemExit(0)))  # fmt: skip
    res = CliRunner().invoke(app, ["regression", "--dataset", "x", "--family", "gp", "--out",
                                   str(tmp_path)])  # fmt: skip
    assert "note: --family gp" in res.output and "600 pool rows" in res.output


def test_run_log_lines_in_a_file_are_not_wrapped():
    """In a log file (not a terminal) each of eglpp run's messages stays one line, brackets kept."""
    buffer = io.StringIO()
    message = "run 0 egl++ cycle 1: PCK@0.2 = 33.06 % [6/45 steps, 6:53 elapsed, ~31:12 left] " * 2
    log_lines(Console(file=buffer, log_path=False))(message)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].rstrip().endswith(message.rstrip()), lines
    assert re.match(r"\[\d\d:\d\d:\d\d\] run 0", lines[0])
