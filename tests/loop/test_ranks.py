"""Every torchrun rank runs tasks (``eglpp run --jobs N``, ``torchrun -m eglpp run``): the bytes
of one process's results.json for any number of ranks or nodes, resumed after a kill.

One module-scoped single process (the micro experiment: 2 runs × 3 strategies, 8 tasks) is the
reference; each test launches real ranks as subprocesses, so the placement, the waits, rank 0's
progress lines and torchrun's handling of failures are those a user gets.
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import run_experiment
from eglpp.experiment.ranks import Task, experiment_tasks, placed
from eglpp.experiment.rundir import RunPaths
from eglpp.io import read_json

STRATEGIES = ["random", "learning-loss", "egl++"]
KEYS = [f"run {r} base" for r in range(2)] + [f"run {r} {s}" for r in range(2) for s in STRATEGIES]


@pytest.fixture(scope="module")
def settings(micro_config) -> dict:
    micro = micro_config(runs=2, strategies=STRATEGIES)
    micro["strategy"] = {**micro["strategy"], "ll_head_epochs": 1}
    return micro


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, settings) -> Path:
    path = tmp_path_factory.mktemp("config") / "micro.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, settings) -> Path:
    out = tmp_path_factory.mktemp("one")
    run_experiment(config_from_dict(settings, base=preset("tiny")), out, log=lambda m: None)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def _same_as_one_process(out: Path, one: Path, killed: bool = False) -> None:
    assert _sha(out / "results.json") == _sha(one / "results.json")  # byte for byte
    assert _files(out) == _files(one) and len(_files(one)) == 2 * (1 + 3 * 2) + 2 * 3 * 2
    assert killed or not list(out.glob("**/*.tmp"))  # kill -9 may leave a temporary file


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    env.pop("EGLPP_JOBS", None)
    return env


def _run_args(config: Path, out: Path) -> list[str]:
    return ["run", "--preset", "tiny", "--config", str(config), "--out", str(out),
            "--threads", "1"]  # fmt: skip


def _done_lines(output: str) -> list[str]:
    """The task of each of rank 0's progress lines, in order."""
    return [line.split("] ", 1)[1].split(": done in")[0] for line in output.splitlines()
            if ": done in " in line]  # fmt: skip


def test_placement_gives_each_task_to_one_rank_bases_first(settings):
    tasks = experiment_tasks(config_from_dict(settings, base=preset("tiny")))
    assert [t.key for t in tasks] == KEYS
    for world in (1, 2, 3, 5, 9):
        mine = [placed(tasks, rank, world) for rank in range(world)]
        assert sorted(t.key for m in mine for t in m) == sorted(KEYS)
        for m in mine:  # a rank's base models come before its chains: it never waits on itself
            kinds = [t.strategy is None for t in m]
            assert kinds == sorted(kinds, reverse=True)
    assert Task(1, "egl++").key == "run 1 egl++" and Task(0).key == "run 0 base"


def test_a_chain_waits_for_its_own_runs_base_model(tmp_path, monkeypatch, settings):
    """What a chain's rank waits for before it starts: run 1's base model, not run 0's."""
    import eglpp.experiment.ranks as ranks

    exp = SimpleNamespace(cfg=config_from_dict(settings, base=preset("tiny")),
                          paths=RunPaths(tmp_path))  # fmt: skip
    waited, ran = [], []
    monkeypatch.setattr(ranks, "_wait", lambda condition, poll: waited.append(condition))
    monkeypatch.setattr(ranks, "chain_task", lambda e, r, s, explain: ran.append((r, s)))
    ranks._run_task(exp, Task(1, "egl++"), 0, None, 0.01)
    assert ran == [(1, "egl++")] and len(waited) == 1
    for r in (0, 1):
        assert not waited[0]()
        marker = RunPaths.metrics(exp.paths.base(r))
        marker.parent.mkdir(parents=True)
        marker.write_text("{}")
    assert waited[0]()


def test_rank_0_writes_the_results_once_every_rank_is_done(tmp_path, monkeypatch, settings):
    """Rank 0 of 2, with the tasks faked (each writes its done markers): rank 1's chains finish
    only once rank 0 waits, after its own tasks; results.json must come after them."""
    import eglpp.experiment.ranks as ranks

    cfg = config_from_dict(settings, base=preset("tiny"))
    exp = SimpleNamespace(cfg=cfg, paths=RunPaths(tmp_path))
    tasks = experiment_tasks(cfg)

    def finish(task: Task) -> None:
        for step in ranks._step_dirs(exp.paths, cfg, task):
            step.mkdir(parents=True, exist_ok=True)
            RunPaths.metrics(step).write_text('{"seconds": {"train": 1.0}}')

    real_wait = ranks._wait

    def wait(condition, poll):  # rank 1 finishes once rank 0 has done its own tasks
        if all(ranks._done(exp.paths, cfg, t) for t in placed(tasks, 0, 2)):
            for task in placed(tasks, 1, 2):
                finish(task)
        real_wait(condition, poll)

    seen = []
    for name, fake in {
        "launch_env": lambda: (0, 2, 0),
        "exit_with_parent": lambda: None,
        "open_experiment": lambda cfg, out, log: exp,
        "base_task": lambda e, r, explain: finish(Task(r)),
        "chain_task": lambda e, r, s, explain: finish(Task(r, s)),
        "_wait": wait,
        "write_results": lambda e: seen.append([ranks._done(e.paths, cfg, t) for t in tasks]),
    }.items():
        monkeypatch.setattr(ranks, name, fake)
    finish(Task(1))  # rank 1's base model, which rank 0's chain of run 1 waits for
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    lines: list[str] = []
    try:
        ranks.run_ranks(cfg, tmp_path, log=lines.append, poll=0.01)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert seen == [[True] * len(tasks)]
    found = _done_lines("\n".join(f"] {line}" for line in lines))
    assert sorted(found) == sorted(set(KEYS) - {"run 1 base"})  # done before: not reported


def test_jobs_two_writes_the_bytes_of_one_process(tmp_path, config_file, one_process):
    out = tmp_path / "jobs"
    argv = [sys.executable, "-m", "eglpp", *_run_args(config_file, out), "--jobs", "2"]
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    _same_as_one_process(out, one_process)
    assert done.stdout.count("eglpp run") == 1 and "2 processes (torchrun)" in done.stdout
    assert sorted(_done_lines(done.stdout)) == sorted(KEYS)  # one line per task, rank 0 only
    assert "[8/8 tasks," in done.stdout and "| egl++ |" in done.stdout
    assert (out / "run-00" / "egl++" / "cycle-01" / "explain_gallery.png").stat().st_size


def _torchrun(*launcher: str, config: Path, out: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "eglpp",
            *_run_args(config, out)]  # fmt: skip
    return subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def test_two_nodes_write_the_bytes_of_one_process(tmp_path, config_file, one_process):
    """Two torchrun agents meeting at a c10d rendezvous, as on two nodes of a cluster."""
    out, port = tmp_path / "nodes", _free_port()
    launcher = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=eglpp-test"]  # fmt: skip
    nodes = [_torchrun(*launcher, config=config_file, out=out) for _ in range(2)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [n.returncode for n in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    _same_as_one_process(out, one_process)
    assert sum("| egl++ |" in o for o in outputs) == 1  # rank 0's node prints the table


def _ranks(agent: int) -> dict[int, int]:
    """RANK -> pid of the processes whose parent is ``agent``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        rank = [v[5:] for v in environ if v.startswith(b"RANK=")]
        if ppid == agent and rank:
            found[int(rank[0])] = int(stat.parent.name)
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _wait_for(condition, what: str, limit: float = 240) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _reader(proc: subprocess.Popen) -> list[str]:
    """The lines ``proc`` prints, collected by a thread as they come."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return lines


needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")


@needs_proc
def test_a_killed_rank_restarts_the_group_which_resumes(tmp_path, config_file, one_process):
    """``kill -9`` of rank 1 once a chain is done: torchrun (--max-restarts 2) restarts both
    ranks, finished steps are read back (their files untouched), the result is the same."""
    out = tmp_path / "killed"
    proc = _torchrun("--standalone", "--nproc-per-node=2", "--max-restarts=2",
                     config=config_file, out=out)  # fmt: skip
    lines = _reader(proc)
    try:
        first = out / "run-00" / "random" / "cycle-02" / "metrics.json"
        _wait_for(lambda: first.exists() or proc.poll() is not None, "a finished chain")
        ranks = _ranks(proc.pid)
        assert set(ranks) == {0, 1} and not (out / "results.json").exists()
        finished = {p: p.stat().st_mtime_ns for p in out.glob("run-*/**/metrics.json")}
        os.kill(ranks[1], signal.SIGKILL)
        assert proc.wait(timeout=300) == 0, "".join(lines[-60:])
    finally:
        proc.kill()
    output = "".join(lines)
    assert "restart" in output.lower()  # torchrun's agent said it restarts the group
    _same_as_one_process(out, one_process, killed=True)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # not redone
    assert first in finished


def test_a_failing_task_stops_every_rank_naming_the_task(tmp_path, config_file):
    out = tmp_path / "fails"
    bad = out / "run-00" / "random" / "cycle-01" / "selection.npz"  # rank 0's first chain
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not an npz archive")
    argv = [sys.executable, "-m", "eglpp", *_run_args(config_file, out), "--jobs", "2"]
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "eglpp run: stopped, rank" in last and "task run 0 random failed on rank 0" in last
    assert "selection.npz: not a readable selection file" in last
    assert not (out / "results.json").exists()
    assert not (out / ".eglpp.lock").exists()


@needs_proc
def test_ranks_end_when_the_command_is_killed_and_a_rerun_resumes(
    tmp_path, config_file, one_process
):
    out = tmp_path / "orphans"
    argv = [sys.executable, "-m", "eglpp", *_run_args(config_file, out), "--jobs", "2"]
    proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    lines = _reader(proc)
    try:
        _wait_for(lambda: any(": done in" in line for line in lines) or proc.poll() is not None,
                  "a finished task")  # fmt: skip
        ranks = _ranks(proc.pid)
        assert len(ranks) == 2 and all(map(_running, ranks.values())), "".join(lines)
        proc.kill()  # kill -9 of eglpp run: torchrun's agent goes with it
        proc.wait()
        _wait_for(lambda: not any(map(_running, ranks.values())), "the ranks to end", 10)
        assert not (out / "results.json").exists()  # they stopped, and did not run to the end
    finally:
        proc.kill()
    again = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "removed a stale lock" in again.stdout
    _same_as_one_process(out, one_process, killed=True)


def test_default_jobs_fill_the_cores_or_the_gpus(monkeypatch, settings):
    import torch

    from eglpp.experiment.loop import default_jobs

    cfg = config_from_dict(settings, base=preset("tiny"))  # 2 runs × 3 strategies: 6 chains
    monkeypatch.setattr("eglpp.experiment.loop.usable_cores", lambda: 8)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_jobs(cfg) == 6  # 8 cores, but 6 chains
        torch.set_num_threads(4)
        assert default_jobs(cfg) == 2
        torch.set_num_threads(16)
        assert default_jobs(cfg) == 1
    finally:
        torch.set_num_threads(threads)
    assert default_jobs(config_from_dict({"device": "cuda"}, base=cfg)) == 4  # one per GPU
    assert default_jobs(config_from_dict({"device": "cuda:1"}, base=cfg)) == 1


def test_jobs_below_one_and_other_than_the_ranks_are_refused(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from eglpp.cli import app

    env = {"COLUMNS": "1000", "NO_COLOR": "1"}
    argv = ["run", "--preset", "tiny", "--jobs", "0", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, argv, env=env)
    assert res.exit_code == 2 and "--jobs" in res.output and "must be >= 1, got 0" in res.output
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("WORLD_SIZE", "2")  # as a rank of torchrun
    argv = ["run", "--preset", "tiny", "--jobs", "3", "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(app, argv, env=env)
    assert res.exit_code == 2 and "each of the 2 ranks is one process, got 3" in res.output
