"""``jobs`` > 1: base models and (run, strategy)s in worker processes, the same numbers as one.

The scheduler (:func:`eglpp.experiment.parallel.run_tasks`) is tested with small task functions
defined here (spawned workers import this module by name); the experiment with the micro
config: 2 runs × 3 strategies in 2 workers against one process, uninterrupted and resumed.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import default_jobs, run_experiment
from eglpp.experiment.parallel import Task, WorkerDied, run_tasks, worker_log
from eglpp.io import read_json
from eglpp.report.explain import explain_selection

# --- task functions for the scheduler tests (module level: workers import them by name) ---

_LOG_DIR: list[Path] = []


def _remember(folder: str) -> None:
    _LOG_DIR[:] = [Path(folder)]


def _write(name: str, seconds: float = 0.0) -> None:
    """Record when ``name`` started and ended (nanoseconds), after sleeping ``seconds``."""
    start = time.time_ns()
    time.sleep(seconds)
    worker_log(f"wrote {name}")
    (_LOG_DIR[0] / name).write_text(f"{start} {time.time_ns()} {os.getpid()}")


def _meet(name: str, other: str) -> None:
    """Start, then wait (up to a minute) for task ``other`` to start too: only side by side do
    both finish in time."""
    (_LOG_DIR[0] / f"{name}.started").touch()
    deadline = time.monotonic() + 60
    while not (_LOG_DIR[0] / f"{other}.started").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: {other} never started beside it")
        time.sleep(0.01)
    _write(name)


def _fail(message: str) -> None:
    raise KeyError(message)


def _die(after: float = 0.0) -> None:
    time.sleep(after)  # lets the worker's announcement of the task reach the parent
    os._exit(3)


def _span(folder: Path, name: str) -> tuple[int, int, int]:
    start, end, pid = (int(v) for v in (folder / name).read_text().split())
    return start, end, pid


def test_tasks_wait_for_what_they_follow_and_share_the_workers(tmp_path):
    tasks = [
        Task("a", _meet, ("a", "b")),
        Task("b", _meet, ("b", "a")),
        Task("a1", _write, ("a1",), after=("a",)),
        Task("b1", _write, ("b1",), after=("b",)),
        Task("ab", _write, ("ab",), after=("a", "b")),
    ]
    lines = []
    run_tasks(tasks, 2, setup=_remember, setup_args=(str(tmp_path),), log=lines.append)
    spans = {t.key: _span(tmp_path, t.key) for t in tasks}
    for t in tasks:
        for first in t.after:
            assert spans[first][1] <= spans[t.key][0], f"{t.key} started before {first} ended"
    assert len({pid for *_, pid in spans.values()}) == 2
    assert sorted(lines) == sorted(f"wrote {t.key}" for t in tasks)


def test_a_failing_task_raises_its_error_and_stops_the_rest(tmp_path):
    tasks = [Task("slow", _write, ("slow", 30.0)), Task("bad", _fail, ("no such thing",))]
    tasks += [Task("later", _write, ("later",), after=("bad",))]
    lines = []
    start = time.perf_counter()
    with pytest.raises(KeyError, match="no such thing"):
        run_tasks(tasks, 2, setup=_remember, setup_args=(str(tmp_path),), log=lines.append)
    assert time.perf_counter() - start < 20, "the slow task was not stopped"
    assert not (tmp_path / "slow").exists() and not (tmp_path / "later").exists()
    assert any("bad failed" in line for line in lines)


def test_a_worker_that_dies_is_named(tmp_path):
    tasks = [Task("dies", _die, (1.0,)), Task("sleeps", _write, ("sleeps", 30.0))]
    with pytest.raises(WorkerDied, match=r"exit code 3 while running dies; finished steps"):
        run_tasks(tasks, 2, setup=_remember, setup_args=(str(tmp_path),))


def test_what_cannot_reach_a_worker_is_named():
    with pytest.raises(TypeError, match="receive setup and setup_args pickled"):
        run_tasks([Task("a", _die)], 2, setup=_remember, setup_args=(lambda: 0,))
    with pytest.raises(TypeError, match="receive task 'b' pickled"):
        run_tasks([Task("a", _die), Task("b", lambda: None)], 2, setup=_remember)


def test_a_task_graph_out_of_order_is_refused():
    with pytest.raises(ValueError, match="'b' waits for \\['a'\\]"):
        run_tasks([Task("b", _die, after=("a",)), Task("a", _die)], 2, setup=_remember)
    with pytest.raises(ValueError, match="unique"):
        run_tasks([Task("a", _die), Task("a", _die)], 2, setup=_remember)


ORPHAN_SCRIPT = """
import os, sys, time
from eglpp.experiment.parallel import Task, run_tasks

def setup():
    pass

def record_and_sleep(path):
    with open(path + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(120)

if __name__ == "__main__":
    run_tasks([Task("sleeps", record_and_sleep, (sys.argv[1],))], 1, setup=setup)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an orphan's reaper may be slow)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_end_when_their_parent_is_killed(tmp_path):
    script, pid_file = tmp_path / "orphans.py", tmp_path / "worker.pid"
    script.write_text(ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file)])
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            assert time.monotonic() < deadline and parent.poll() is None, "the worker never ran"
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert _running(worker)
        parent.kill()  # kill -9: no one left to terminate the worker
        parent.wait()
        deadline = time.monotonic() + 10
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(worker), "the orphaned worker kept running"
    finally:
        parent.kill()


# --- the experiment ---


@pytest.fixture(scope="module")
def cfg(micro_config):
    strategies = ["random", "learning-loss", "egl++"]
    micro = micro_config(runs=2, strategies=strategies)
    micro["strategy"] = {**micro["strategy"], "ll_head_epochs": 1}
    return config_from_dict(micro, base=preset("tiny"))


def _files(out: Path) -> dict[str, object]:
    """Every selection (query indices, scores) and metric of a run folder, by relative path."""
    found: dict[str, object] = {}
    for path in sorted(out.glob("run-*/*/cycle-*/selection.npz")):
        with np.load(path) as z:
            found[str(path.relative_to(out))] = (z["query_indices"].tolist(), z["scores"].tolist())
    for path in sorted(out.glob("run-*/**/metrics.json")):
        metrics = read_json(path)
        found[str(path.relative_to(out))] = {k: v for k, v in metrics.items() if k != "seconds"}
    return found


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, cfg):
    out = tmp_path_factory.mktemp("one")
    return out, run_experiment(cfg, out, log=lambda m: None)


def test_two_workers_give_the_numbers_of_one_process(tmp_path, cfg, one_process):
    one, results = one_process
    lines: list[str] = []
    parallel = run_experiment(cfg, tmp_path, log=lines.append, jobs=2, explain=explain_selection)
    assert parallel["scores"] == results["scores"]
    assert _files(tmp_path) == _files(one) and len(_files(one)) == 2 * (1 + 3 * 2) + 2 * 3 * 2
    assert "2 worker processes, 1 thread(s) each" in lines
    assert any(line.startswith("run 1 egl++ cycle 2: PCK@0.2") for line in lines)
    assert (tmp_path / "run-00" / "egl++" / "cycle-01" / "explain_gallery.png").stat().st_size
    # interrupted: run 1 (base model and all) and run 0's egl++ are lost
    shutil.rmtree(tmp_path / "run-01")
    shutil.rmtree(tmp_path / "run-00" / "egl++")
    (tmp_path / "results.json").unlink()
    resumed = run_experiment(cfg, tmp_path, log=lines.append, jobs=2)
    assert resumed["scores"] == results["scores"] and _files(tmp_path) == _files(one)


def test_jobs_are_checked_before_any_work(tmp_path, cfg):
    with pytest.raises(ValueError, match="jobs must be an integer >= 1, got 0"):
        run_experiment(cfg, tmp_path / "zero", jobs=0)
    cuda = config_from_dict({"device": "cuda"}, base=cfg)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="jobs=2 runs steps in CPU processes"):
            run_experiment(cuda, tmp_path / "cuda", jobs=2)
    assert not (tmp_path / "zero").exists()


def test_default_jobs_fill_the_cores_at_the_thread_count(monkeypatch, cfg):
    monkeypatch.setattr("eglpp.experiment.loop.usable_cores", lambda: 8)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_jobs(cfg) == 6  # 8 cores, but 2 runs × 3 strategies
        torch.set_num_threads(4)
        assert default_jobs(cfg) == 2
        torch.set_num_threads(16)
        assert default_jobs(cfg) == 1
    finally:
        torch.set_num_threads(threads)
    assert default_jobs(config_from_dict({"device": "cuda:0"}, base=cfg)) == 1


def test_the_command_runs_with_workers(tmp_path):
    """``python -m eglpp run`` end to end with ``EGLPP_JOBS=2``, the thread policy and the
    workers' start as a user gets them."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "eglpp", "run", "--preset", "tiny", "--runs", "1", "--cycles",
            "1", "--budget", "2", "--initial", "4", "--strategies", "random,coreset", "--out",
            str(out)]  # fmt: skip
    env = {**os.environ, "EGLPP_JOBS": "2"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 worker processes" in done.stdout
    assert set(read_json(out / "results.json")["scores"]) == {"random", "coreset"}


def test_eglpp_run_refuses_jobs_below_one(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from eglpp.cli import app

    argv = ["run", "--preset", "tiny", "--jobs", "0", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, argv, env={"COLUMNS": "1000", "NO_COLOR": "1"})
    assert res.exit_code == 2 and "--jobs" in res.output and "must be >= 1, got 0" in res.output
    assert not (tmp_path / "o").exists()
