"""A finished run in a folder nobody may write (an archived run, a read-only mount): rerunning
its command reads everything back and writes nothing (issue 11, group 1)."""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path

import pytest

from eglpp.cli import main
from eglpp.io import LOCK_NAME, atomic_write_bytes, atomic_write_text, run_lock

RUN = ["run", "--preset", "tiny", "--runs", "1", "--cycles", "1", "--budget", "2",
       "--initial", "4", "--strategies", "random"]  # fmt: skip


def _main(argv: list[str], monkeypatch) -> int:
    monkeypatch.setattr(sys, "argv", ["eglpp", *argv])
    try:
        main()
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def _read_only(monkeypatch, folder: Path) -> None:
    """Every file creation under ``folder`` fails as on a read-only file system."""
    real_open, real_mkstemp = os.open, tempfile.mkstemp

    def refuse(path) -> None:
        if Path(path).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    def fake_open(path, flags, *a, **k):
        if flags & os.O_CREAT:
            refuse(path)
        return real_open(path, flags, *a, **k)

    def fake_mkstemp(*a, dir=None, **k):
        refuse(Path(dir) / "x")
        return real_mkstemp(*a, dir=dir, **k)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(tempfile, "mkstemp", fake_mkstemp)


def _state(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_rerunning_a_finished_run_writes_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert _main(RUN + ["--out", str(out)], monkeypatch) == 0
    first = capsys.readouterr().out
    before = _state(out)
    _read_only(monkeypatch, out)
    assert _main(RUN + ["--out", str(out)], monkeypatch) == 0, capsys.readouterr().err
    again = capsys.readouterr().out
    assert _state(out) == before, "a finished run's files are read, not rewritten"
    table = (out / "table.md").read_text().splitlines()[2]  # the first strategy row
    assert table in first and table in again


def test_a_changed_file_is_still_written(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one")
    inode = path.stat().st_ino
    atomic_write_text(path, "one")
    assert path.stat().st_ino == inode, "identical content: left alone"
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and path.stat().st_ino != inode
    big = bytes(range(256)) * 12_000  # > 2 blocks of the comparison: only the last byte differs
    atomic_write_bytes(path, big)
    atomic_write_bytes(path, big[:-1] + b"x")
    assert path.read_bytes()[-1:] == b"x"


def test_no_lock_in_a_folder_nobody_may_write(tmp_path, monkeypatch):
    _read_only(monkeypatch, tmp_path)
    with run_lock(tmp_path, log=pytest.fail) as lock:
        assert not lock.exists()
    with pytest.raises(OSError, match="Read-only"):  # a missing folder is not a read-only one
        with run_lock(tmp_path / "missing" / "deeper"):
            pass
    assert not (tmp_path / LOCK_NAME).exists()
