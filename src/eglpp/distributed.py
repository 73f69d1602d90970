"""Processes of ``torchrun``: who this one is, starting a group on one machine, and scoring
sharded across a group with ``torch.distributed``.

Launching (:func:`launch_local`, what ``eglpp run --jobs N`` uses): PyTorch's elastic agent
(``torch.distributed.run``) runs in the calling process and starts ``N`` copies of a Python
module as ranks 0 … N-1 (:func:`launch_env` reads them back). The agent stops every rank when
one fails or when it is itself stopped (Ctrl-C, ``kill``); :func:`exit_with_parent` makes a rank
end when its agent is killed outright (``kill -9``), so no orphan keeps writing.

EGL++'s cost is the per-example gradient norms of the unlabelled pool: rows are independent, so
each process scores a contiguous shard of the rows and the shards are gathered, in rank order,
to every process. Every process then holds the same (U, K) array and makes the same selection
as one process would. Outside an initialised process group (or with one process) every helper
here is a no-op that computes all rows locally.

Backends: gloo on CPU, NCCL on GPUs (:func:`process_group` picks one from the device). The
shards' boundaries fall on multiples of the scoring batch, so each image is scored in the same
batch composition as in one process.

Example (2 processes on one machine)::

    torchrun --nproc_per_node 2 my_script.py   # inside: with process_group("cpu"): ...
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "is_distributed",
    "rank_and_size",
    "launch_rank",
    "launch_env",
    "launch_local",
    "exit_with_parent",
    "process_group",
    "shard_rows",
    "gather_rows",
    "sharded",
]


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_size() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` when not distributed."""
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


def launch_rank() -> int:
    """The global rank ``torchrun`` gave this process (``RANK``), 0 when not launched by it."""
    return int(os.environ.get("RANK", "0"))


def launch_env() -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` that ``torchrun`` gave this process; ``(0, 1, 0)``
    when it did not start it."""
    env = os.environ
    return (
        int(env.get("RANK", "0")),
        int(env.get("WORLD_SIZE", "1")),
        int(env.get("LOCAL_RANK", "0")),
    )


def launch_local(nproc: int, module: str, args: list[str], *, max_restarts: int = 0) -> None:
    """Run ``python -m module *args`` as ``nproc`` ranks on this machine under torchrun's agent.

    The agent runs in this process (``torch.distributed.run`` with ``--standalone``: a local
    rendezvous on a free port) and returns when every rank has ended with 0. A rank that fails
    ends the others and raises torch's ``ChildFailedError``, which names the rank and its exit
    code (the rank's own traceback went to stderr); so does a signal to this process (Ctrl-C:
    ``SignalException``).
    """
    from torch.distributed.run import get_args_parser, run

    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    argv = ["--standalone", f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}",
            "--module", module, *args]  # fmt: skip
    run(get_args_parser().parse_args(argv))


def _watch_parent(parent: int, every: float) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def exit_with_parent(every: float = 1.0) -> None:
    """End this process (exit code 1) within ``every`` seconds of its parent's death.

    torchrun's agent stops its ranks when it is stopped, but not when it is killed with
    SIGKILL: an orphaned rank would go on computing and writing into a run folder that a rerun
    now owns. A daemon thread polls the parent's id.
    """
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent, every), daemon=True).start()


@contextmanager
def process_group(
    device: str | torch.device = "cpu", timeout: timedelta | None = None
) -> Iterator[bool]:
    """Join the process group ``torchrun`` describes in the environment, if any.

    With ``WORLD_SIZE > 1`` (torchrun's variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``) initialises the default group, NCCL for a CUDA device
    (after selecting GPU ``LOCAL_RANK``) and gloo otherwise, and destroys it on exit. Yields
    whether this process is part of a group of several; a group initialised by the caller is
    used as it is and left alone. ``timeout`` bounds each collective's wait (torch's default
    when None).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if dist.is_initialized() or world <= 1:
        yield is_distributed()
        return
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    try:
        yield True
    finally:
        try:  # every rank done before the group goes: tearing gloo down mid-exchange aborts
            dist.barrier()
        except Exception:  # a rank that failed is gone: torchrun stops the others anyway
            pass
        dist.destroy_process_group()


def shard_rows(n_rows: int, rank: int, world_size: int, align: int = 1) -> slice:
    """The contiguous rows of ``range(n_rows)`` that ``rank`` scores.

    Blocks of ``align`` rows are spread as evenly as possible, lower ranks first; the shards of
    all ranks, in rank order, tile ``range(n_rows)`` exactly.

    Examples
    --------
    >>> [shard_rows(10, r, 3, align=2) for r in range(3)]
    [slice(0, 4, None), slice(4, 8, None), slice(8, 10, None)]
    """
    if n_rows < 0 or world_size < 1 or not 0 <= rank < world_size or align < 1:
        raise ValueError(
            f"shard_rows needs n_rows >= 0, 0 <= rank < world_size and align >= 1, got "
            f"n_rows={n_rows}, rank={rank}, world_size={world_size}, align={align}"
        )
    blocks = -(-n_rows // align)
    per, extra = divmod(blocks, world_size)
    first = rank * per + min(rank, extra)
    last = first + per + (rank < extra)
    return slice(min(first * align, n_rows), min(last * align, n_rows))


def gather_rows(local: np.ndarray | BaseException, n_rows: int) -> np.ndarray:
    """Every rank's rows, concatenated in rank order, on every rank.

    ``local`` may be the exception a rank met while computing its shard: then every rank raises
    (instead of the others waiting forever for its rows).
    """
    if not is_distributed():
        if isinstance(local, BaseException):
            raise local
        return local
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, local)
    failed = [(r, p) for r, p in enumerate(parts) if isinstance(p, BaseException)]
    if failed:
        rank, exc = failed[0]
        raise RuntimeError(f"scoring failed on rank {rank}: {exc!r}") from exc
    out = np.concatenate(parts)
    if out.shape[0] != n_rows:
        raise RuntimeError(f"gathered {out.shape[0]} rows from the shards, expected {n_rows}")
    return out


def sharded(fn: Callable[[slice], np.ndarray], n_rows: int, *, align: int = 1) -> np.ndarray:
    """``fn(rows)`` for this rank's shard of ``range(n_rows)``, gathered to every rank.

    Outside a process group: ``fn(slice(0, n_rows))``.
    """
    rank, world = rank_and_size()
    rows = shard_rows(n_rows, rank, world, align)
    if world == 1:
        return fn(rows)
    try:
        local = np.asarray(fn(rows))
    except Exception as exc:  # reported on every rank by gather_rows
        local = RuntimeError(f"{type(exc).__name__}: {exc}")
    return gather_rows(local, n_rows)
