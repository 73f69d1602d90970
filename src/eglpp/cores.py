"""The CPU cores this process may use; torch-free, so the ``eglpp`` command reads it before
torch loads (:mod:`eglpp.console`), and ``eglpp run`` sizes its worker processes by it."""

from __future__ import annotations

import os

__all__ = ["usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
