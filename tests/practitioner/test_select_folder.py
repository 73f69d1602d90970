"""Issue 21 items 1-2: `eglpp select --out` never replaces another selection (or another
command's output) unasked; the same command there resumes."""

import json
import shutil

import pytest
from conftest import SIZE
from typer.testing import CliRunner

from eglpp.cli import app


def _select(world, out, strategy="random", *extra):
    return ["select", "--checkpoint", str(world["checkpoint"]), "--labelled",
            str(world["labelled"]), "--pool", str(world["pool"]), "--budget", "3",
            "--strategy", strategy, "--input-size", str(SIZE), "--chunk-size", "16",
            "--no-progress", "--out", str(out), *extra]  # fmt: skip


def _invoke(args):
    return CliRunner().invoke(app, args)


def test_a_copy_of_a_selection_is_not_replaced_by_another_one(world, tmp_path):
    """The issue's repro: cp -r sel1 copy; select --strategy random --out copy."""
    first = _invoke(_select(world, tmp_path / "sel1", "coreset"))
    assert first.exit_code == 0, first.output
    shutil.copytree(tmp_path / "sel1", tmp_path / "copy")
    before = (tmp_path / "copy" / "selection.csv").read_text()
    res = _invoke(_select(world, tmp_path / "copy", "random"))
    assert res.exit_code != 0
    message = str(res.exception)
    assert f"--out {tmp_path / 'copy'}: holds another selection (coreset, budget 3: " in message
    assert "--strategy coreset" in message and "select_config.json" in message
    assert "give another --out to keep it, or add --overwrite to replace it" in message
    assert (tmp_path / "copy" / "selection.csv").read_text() == before, "nothing replaced"
    summary = json.loads((tmp_path / "copy" / "summary.json").read_text())
    assert summary["strategy"] == "coreset"
    # the same command resumes (every chunk reused); --overwrite replaces
    again = _invoke(_select(world, tmp_path / "copy", "coreset"))
    assert again.exit_code == 0 and "0 chunks scored, 3 reused" in again.output
    replaced = _invoke(_select(world, tmp_path / "copy", "random", "--overwrite"))
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((tmp_path / "copy" / "summary.json").read_text())["strategy"] == "random"


@pytest.mark.parametrize(
    "marker, what",
    [("train.json", "a trained model (eglpp train)"), ("model.pt", "a trained model")],
)
def test_a_folder_of_another_command_is_refused(world, tmp_path, marker, what):
    out = tmp_path / "runs" / "train"
    out.mkdir(parents=True)
    (out / marker).write_text("{}")
    res = _invoke(_select(world, out))
    assert res.exit_code != 0 and f"holds {what}" in str(res.exception)
    assert not (out / "selection.csv").exists()
