"""Independent steps of an experiment in several worker processes (``eglpp run --jobs N``).

The base models of an experiment's runs do not depend on each other, and once a run's base
model is saved its strategies do not either: each reads the base checkpoint, runs its cycles
and writes only its own folder. :func:`run_tasks` runs such tasks in ``jobs`` spawned worker
processes, taking them in list order as their prerequisites (``after``) finish.

- **The same numbers as one process.** Every random choice of a step is seeded by the step,
  never by the process, and the caller's ``setup`` gives each worker the parent's thread count,
  so the selections do not depend on ``jobs`` (tested).
- **Spawned, not forked**: no OpenMP thread pool or CUDA context is copied into a child.
- **One log.** Workers send their lines to the parent (:func:`worker_log`), which prints them;
  workers draw no progress bars (several would overwrite each other).
- **Stopping.** A task that raises stops the experiment: the other workers are terminated (a
  step is written atomically, so the finished ones stay and a rerun resumes from them) and the
  task's exception is raised in the parent. Ctrl-C does the same (workers ignore SIGINT; the
  parent terminates them). A worker that dies (killed, out of memory) is reported with its exit
  code and the task it was running; a worker whose parent dies (``kill -9``) ends within a
  second, so a rerun does not share its folder with orphans.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CONTEXT", "Task", "WorkerDied", "run_tasks", "worker_log"]

#: Worker processes start by spawning (a fresh interpreter), on every platform.
CONTEXT = mp.get_context("spawn")

_INBOX: Any = None  # in a worker: the queue to the parent


@dataclass(frozen=True)
class Task:
    """One step: ``fn(*args)`` in a worker once every task named in ``after`` has finished.

    ``fn`` must be a module-level function (it is pickled by name); ``key`` names the task in
    errors ("run 1 egl++")."""

    key: str
    fn: Callable[..., None]
    args: tuple = ()
    after: tuple[str, ...] = ()


class WorkerDied(RuntimeError):
    """A worker process ended without reporting (killed by a signal, out of memory)."""


def worker_log(message: str) -> None:
    """In a worker: send one log line to the parent, which prints it."""
    _INBOX.put(("log", "", message))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _terminated(signum, frame) -> None:
    sys.exit(128 + signum)  # unwinds, so an atomic write removes its temporary file


def _orphan_watch(parent: int, every: float = 1.0) -> None:
    """End this worker soon after its parent dies (``kill -9`` leaves no one to terminate it):
    an orphan would go on computing, and writing into a run folder that a rerun now owns."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _worker(tasks, inbox, setup: Callable[..., None], setup_args: tuple, parent: int) -> None:
    """A worker's life: set up once, then run tasks until the parent sends None."""
    global _INBOX
    _INBOX = inbox
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _terminated)
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()
    try:
        setup(*setup_args)
    except BaseException as exc:
        inbox.put(("error", "worker setup", _portable(exc)))
        return
    while (item := tasks.get()) is not None:
        key, fn, args = item
        inbox.put(("start", key, os.getpid()))
        try:
            fn(*args)
        except Exception as exc:  # not SystemExit: SIGTERM ends the worker
            inbox.put(("error", key, _portable(exc)))
        else:
            inbox.put(("done", key, None))


def _check_graph(tasks: Sequence[Task]) -> None:
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"task keys must be unique, got {keys}")
    for i, t in enumerate(tasks):
        earlier = set(keys[:i])
        if not set(t.after) <= earlier:
            missing = sorted(set(t.after) - earlier)
            raise ValueError(f"task {t.key!r} waits for {missing}: not among the tasks before it")


def _unportable(what: str, exc: Exception) -> TypeError:
    return TypeError(
        f"worker processes receive {what} pickled, and it cannot be ({exc}); "
        "use module-level functions and plain data, or jobs=1"
    )


def _check_portable(tasks: Sequence[Task]) -> None:
    """Pickle each task once, here: a lambda or an open file among them is reported as what
    it is, before any process starts (``setup`` and its arguments go with the start)."""
    for t in tasks:
        try:
            pickle.dumps((t.fn, t.args))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise _unportable(f"task {t.key!r}", exc) from exc


def _next_ready(pending: list[Task], done: set[str]) -> Task | None:
    return next((t for t in pending if set(t.after) <= done), None)


def run_tasks(
    tasks: Sequence[Task],
    jobs: int,
    *,
    setup: Callable[..., None],
    setup_args: tuple = (),
    log: Callable[[str], None] = print,
    poll: float = 0.2,
) -> None:
    """Run ``tasks`` in ``min(jobs, len(tasks))`` spawned processes; return when all finished.

    Parameters
    ----------
    tasks : sequence of Task
        In priority order; a task's ``after`` names tasks listed before it.
    jobs : int
        Worker processes (at least 1).
    setup : callable
        Module-level function each worker calls once with ``setup_args`` (pickled) before its
        first task: thread count, data, the state the task functions read.
    log : callable
        Prints the workers' :func:`worker_log` lines.
    poll : float
        Seconds between checks that the workers are alive.

    Raises
    ------
    BaseException
        The first task's exception (the other workers are terminated first).
    WorkerDied
        A worker ended without reporting; names the task it ran and its exit code.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    _check_graph(tasks)
    if not tasks:
        return
    _check_portable(tasks)
    todo, inbox = CONTEXT.Queue(), CONTEXT.Queue()
    workers = [
        CONTEXT.Process(
            target=_worker, args=(todo, inbox, setup, setup_args, os.getpid()), daemon=True
        )
        for _ in range(min(jobs, len(tasks)))
    ]
    try:
        for w in workers:
            w.start()  # pickles setup and setup_args (shared arrays may only travel here)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        for w in workers:
            if w.pid is not None:
                w.terminate()
        raise _unportable("setup and setup_args", exc) from exc
    try:
        _schedule(list(tasks), len(workers), todo, inbox, workers, log, poll)
    except BaseException:
        for w in workers:
            w.terminate()
        for w in workers:
            w.join(timeout=10)
            if w.exitcode is None:  # SIGTERM is handled between bytecodes: a stuck one is killed
                w.kill()
                w.join()
        todo.cancel_join_thread()  # nobody reads it any more
        raise
    for _ in workers:
        todo.put(None)
    for w in workers:
        w.join()


def _lost_task(dead, workers, owner: dict[int, str], running: set[str]) -> str:
    """The task a dead worker ran: the one it announced, else the running tasks that no live
    worker announced (a worker killed at once may not have sent its announcement)."""
    if dead.pid in owner:
        return owner[dead.pid]
    claimed = {owner.get(w.pid) for w in workers if w.exitcode is None}
    return ", ".join(sorted(running - claimed)) or "no task"


def _schedule(pending, slots, todo, inbox, workers, log, poll) -> None:
    """Hand out ready tasks while a worker is free; relay logs; raise the first failure."""
    done: set[str] = set()
    running: set[str] = set()
    owner: dict[int, str] = {}  # worker pid -> the task it runs
    while pending or running:
        while len(running) < slots and (task := _next_ready(pending, done)) is not None:
            pending.remove(task)
            running.add(task.key)
            todo.put((task.key, task.fn, task.args))
        try:
            kind, key, value = inbox.get(timeout=poll)
        except queue.Empty:
            dead = [w for w in workers if w.exitcode is not None]
            if dead:
                code, task = dead[0].exitcode, _lost_task(dead[0], workers, owner, running)
                why = " (killed: out of memory?)" if code == -signal.SIGKILL else ""
                raise WorkerDied(
                    f"a worker process ended with exit code {code}{why} while running {task}; "
                    "finished steps are kept: rerun the same command to resume"
                ) from None
            continue
        if kind == "start":
            owner[value] = key
        elif kind == "log":
            log(value)
        elif kind == "done":
            running.discard(key)
            done.add(key)
            owner = {pid: task for pid, task in owner.items() if task != key}
        else:
            log(f"{key} failed; stopping the other workers (finished steps are kept)")
            raise value
