"""``eglpp run --jobs N``: the experiment's ranks started for the user under torchrun's agent.

The command itself becomes torchrun's elastic agent (:func:`eglpp.distributed.launch_local`)
and starts ``N`` ranks of ``python -m eglpp run`` on this machine, each running its share of
the tasks (:mod:`eglpp.experiment.ranks`), the same engine as ``torchrun … -m eglpp run`` on
many GPUs or nodes. What a user relies on:

- **the settings**: the ranks read this command's resolved config from a temporary YAML file,
  and its thread count (``--threads``), so they compute what one process would;
- **one log**: the ranks write to this terminal; rank 0 alone prints progress and the table;
- **one lock**: this command holds the run folder's lock for its ranks
  (:data:`LAUNCHED_BY` tells them);
- **stopping**: a rank that fails, or Ctrl-C, stops every rank; this command then ends with
  exit code 1 (130 for Ctrl-C) and one line naming the failed task; the ranks of a command
  killed with ``kill -9`` end within a second (:func:`eglpp.distributed.exit_with_parent`);
  rerunning the command resumes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch
import typer
import yaml
from rich.console import Console

from eglpp.distributed import launch_local
from eglpp.experiment.config import ExperimentConfig, config_to_dict
from eglpp.io import run_lock

__all__ = ["LAUNCHED_BY", "launch_ranks", "launched"]

#: Set for the ranks that ``eglpp run --jobs`` starts: the launcher's process id.
LAUNCHED_BY = "EGLPP_RUN_LAUNCHED_BY"


def launched() -> bool:
    """Whether this process is a rank started by ``eglpp run --jobs`` (which holds the lock).

    A rank whose launcher is already gone (killed before the rank could watch it) exits.
    """
    launcher = os.environ.get(LAUNCHED_BY)
    if launcher is None:
        return False
    if launcher != str(os.getppid()):
        sys.exit(f"eglpp run: the launching process {launcher} is gone; this rank stops")
    return True


def _failure(exc: BaseException) -> str:
    """The failed ranks' own messages (the TaskFailed line, naming the task), else torch's."""
    failures = getattr(exc, "failures", None) or {}
    lines = []
    for rank, failure in sorted(failures.items()):
        message = getattr(failure, "message", "")
        if isinstance(message, dict):  # torch's error file: {"message": ..., "extraInfo": ...}
            message = message.get("message", "")
        lines.append(f"rank {rank}: {str(message).strip() or f'exit code {failure.exitcode}'}")
    return "; ".join(lines) or str(exc)


def launch_ranks(
    jobs: int, cfg: ExperimentConfig, out: Path, preset_name: str, console: Console
) -> None:
    """Run the experiment ``cfg`` in ``out`` as ``jobs`` ranks on this machine; raise
    ``typer.Exit`` with a line naming the failure if one fails."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    threads = torch.get_num_threads()
    console.print(f"[bold]eglpp run[/bold] preset={preset_name} → {out}: {jobs} processes "
                  f"(torchrun), {threads} thread(s) each", soft_wrap=True)  # fmt: skip
    with run_lock(out, log=console.print), tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        args = ["run", "--preset", preset_name, "--config", str(config), "--out", str(out),
                "--threads", str(threads), "--jobs", str(jobs)]  # fmt: skip
        os.environ[LAUNCHED_BY] = str(os.getpid())
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the ranks' torch, as --threads says
        try:
            launch_local(jobs, "eglpp", args)
        except ChildFailedError as exc:
            console.print(f"eglpp run: stopped, {_failure(exc)}", soft_wrap=True, markup=False)
            raise typer.Exit(1) from None
        except SignalException as exc:
            console.print(f"eglpp run: stopped by signal {exc.sigval.name}; finished steps are "
                          "kept: rerun the same command to resume", markup=False,
                          soft_wrap=True)  # fmt: skip
            raise typer.Exit(130) from None
        finally:
            os.environ.pop(LAUNCHED_BY, None)
