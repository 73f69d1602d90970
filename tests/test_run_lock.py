"""The run-folder lock: one command at a time writes a run folder (issue 11, group 6)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from eglpp.io import LOCK_NAME, PathError, run_lock


def _lock(folder, pid, host=None):
    holder = {"pid": pid, "host": host or socket.gethostname(), "since": 0}
    (folder / LOCK_NAME).write_text(json.dumps(holder))


def test_held_while_inside_and_released_after(tmp_path):
    with run_lock(tmp_path, log=pytest.fail) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(PathError, match=rf"is in use by process {os.getpid()} on "):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_NAME).exists()
    with pytest.raises(RuntimeError, match="boom"), run_lock(tmp_path):
        raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists(), "released on an error too"


def test_a_live_process_holds_it(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _lock(tmp_path, sleeper.pid)
        with pytest.raises(PathError, match=rf"in use by process {sleeper.pid} .*delete .*lock"):
            with run_lock(tmp_path):
                pass
        _lock(tmp_path, 1, host="another-host")  # cannot be checked there: held
        with pytest.raises(PathError, match="in use by process 1 on another-host"):
            with run_lock(tmp_path):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stale_lock_is_reported_and_taken_over(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    _lock(tmp_path, int(gone.stdout))
    notes = []
    with run_lock(tmp_path, log=notes.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(notes) == 1 and f"of process {int(gone.stdout)}, gone" in notes[0]
    (tmp_path / LOCK_NAME).write_text("")  # torn by a crash while written, long ago
    os.utime(tmp_path / LOCK_NAME, (0, 0))
    with run_lock(tmp_path, log=notes.append):
        pass
    assert "stale lock (unreadable)" in notes[1]
