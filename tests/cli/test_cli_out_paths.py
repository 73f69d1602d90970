"""Every command's output path: a file where a folder goes (or the reverse), a folder under a
file, a place that cannot be written. Each ends in one line naming the flag and the path, exit
code 2, no traceback (issue 11, group 1)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from eglpp.cli import main
from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A tiny checkpoint (with train.json), a results.json to report on, a file, a read-only
    folder."""
    root = tmp_path_factory.mktemp("outputs")
    (root / "ck").mkdir()
    save_checkpoint(
        root / "ck" / "model.pt", StackedHourglass(HourglassConfig(n_stacks=1, channels=8, depth=2))
    )
    (root / "ck" / "train.json").write_text(json.dumps({"options": {"input_size": 32}}))
    (root / "a_file").write_text("not a folder\n")
    (root / "a_folder").mkdir()
    (root / "run").mkdir()
    results = {"task": "t", "metric": "rmse", "higher_is_better": False, "n_labelled": [2, 3],
               "scores": {"egl": [[1.0, 0.9], [1.1, 0.8]], "random": [[1.0, 1.0], [1.2, 1.1]]},
               "config": {}}  # fmt: skip
    (root / "run" / "results.json").write_text(json.dumps(results))
    (root / "read_only").mkdir()
    (root / "read_only").chmod(0o555)
    return root


def _unwritable(root: Path) -> Path:
    """An existing folder this process cannot write in: a read-only folder, or /sys for root."""
    if os.geteuid() != 0:
        return root / "read_only"
    try:
        Path("/sys/eglpp-test").mkdir()
    except PermissionError:
        return Path("/sys")
    pytest.skip("running as root with no read-only place to write into")


FOLDERS = {  # commands whose --out is a folder: argv before --out
    "run": lambda r: ["run", "--preset", "tiny", "--runs", "1"],
    "regression": lambda r: ["regression", "--dataset", "engel", "--runs", "1", "--no-progress"],
    "train": lambda r: ["train", "synthetic", "--n-train", "4", "--n-test", "2", "--epochs", "1"],
    "select": lambda r: ["select", "--checkpoint", str(r / "ck" / "model.pt"), "--labelled",
                         str(r / "labelled.json"), "--pool", str(r), "--budget", "1"],
}  # fmt: skip
FILES = {  # commands whose --out is a file
    "import": lambda r: ["import", "--labelled", str(r / "l.json"), "--annotations",
                         str(r / "a.json"), "--selection", str(r)],
    "report": lambda r: ["report", str(r / "run")],
    "demo-annotate": lambda r: ["demo-annotate", str(r), "--truth", str(r / "t.json")],
}  # fmt: skip
KINDS = {
    "existing": (lambda r, folder: r / ("a_file" if folder else "a_folder"),
                 r"--out \S+: is a (file; expected a folder|folder; expected a file name)"),
    "under_a_file": (lambda r, folder: r / "a_file" / ("x" if folder else "x.json"),
                     r"--out \S+: \S+a_file is a file, not a folder"),
    "unwritable": (lambda r, folder: _unwritable(r) / ("eglpp-out" if folder else "sub/x.json"),
                   r"(cannot create \S+ \((Permission denied|Operation not permitted)\)"
                   r"|: (Permission denied|Operation not permitted)$)"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("command", sorted(FOLDERS) + sorted(FILES))
def test_bad_output_path_is_one_line(inputs, command, kind, monkeypatch, capsys):
    folder = command in FOLDERS
    make_out, says = KINDS[kind]
    out = make_out(inputs, folder)
    argv = (FOLDERS if folder else FILES)[command](inputs) + ["--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["eglpp", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(says, err.strip()), err


def test_a_write_refused_inside_an_existing_folder_is_one_line(inputs, monkeypatch, capsys):
    """The folder exists (check_output passes) but the file cannot be written: main() turns the
    OSError into one line naming the file, not its temporary."""
    out = _unwritable(inputs) / "report.html"
    monkeypatch.setattr(sys, "argv", ["eglpp", "report", str(inputs / "run"), "--out", str(out)])
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert re.fullmatch(rf"error: {re.escape(str(out))}: (Permission denied|Operation not "
                        r"permitted|Read-only file system)\n", err), err  # fmt: skip


@pytest.mark.parametrize("command", ["import", "demo-annotate"])
def test_a_file_already_at_out_is_refused_in_one_line(inputs, command, monkeypatch, capsys):
    """The files eglpp writes whole (a merged labelled set, an export) never replace another:
    refused before any work, the file untouched, --overwrite named."""
    out = inputs / "a_file"
    argv = FILES[command](inputs) + ["--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["eglpp", *argv])
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert re.fullmatch(rf"error: --out {re.escape(str(out))}: already exists \(13 bytes\); "
                        r"eglpp does not replace it: give a new name, or --overwrite to replace "
                        r"it\n", err), err  # fmt: skip
    assert out.read_text() == "not a folder\n"
