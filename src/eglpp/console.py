"""The ``eglpp`` executable: the CPU thread policy, set before torch loads, then the CLI.

On a small machine that also runs other work, torch's default OpenMP threads spin-wait for
each other and a training step runs several times slower than with one thread
(``benchmarks/threads.py``). Unless the user chose (any ``OMP_*`` variable, or ``--threads``,
which the commands apply after this), the executable therefore sets ``OMP_WAIT_POLICY=PASSIVE``
and, on :data:`SMALL` or fewer usable cores, ``OMP_NUM_THREADS=1``. OpenMP reads both when
torch loads, which is why this module imports the CLI only after setting them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from eglpp.cores import usable_cores

#: Up to this many usable cores, one thread per process is the default.
SMALL = 2

__all__ = ["SMALL", "thread_policy", "main"]


def thread_policy(env: MutableMapping[str, str], cores: int) -> dict[str, str]:
    """Set the default thread environment in ``env`` unless the user set any ``OMP_*``
    variable; returns what was set.

    >>> thread_policy({}, cores=2)
    {'OMP_WAIT_POLICY': 'PASSIVE', 'OMP_NUM_THREADS': '1'}
    >>> thread_policy({}, cores=16)
    {'OMP_WAIT_POLICY': 'PASSIVE'}
    >>> thread_policy({"OMP_NUM_THREADS": "4"}, cores=2)
    {}
    """
    if any(key.startswith("OMP_") for key in env):
        return {}
    chosen = {"OMP_WAIT_POLICY": "PASSIVE"}
    if cores <= SMALL:
        chosen["OMP_NUM_THREADS"] = "1"
    env.update(chosen)
    return chosen


def main() -> None:
    """Entry point of the ``eglpp`` command."""
    thread_policy(os.environ, usable_cores())
    from eglpp.cli import main as cli_main  # after the thread policy: torch loads here

    cli_main()


if __name__ == "__main__":
    main()
