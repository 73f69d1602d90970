"""Test-wide settings (one torch thread, so the suite is fast and steady on a busy machine) and
the micro pose experiment that the loop, report and distributed tests run."""

import copy
import os
from collections.abc import Callable

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the CLI subprocesses the tests start
#: ``eglpp run`` in one process unless a test asks for ranks (tests/loop/test_ranks.py)
os.environ.setdefault("EGLPP_JOBS", "1")

#: A pose experiment small enough for a few seconds: one run of two cycles (budget 6) from 12
#: labelled of 40 rendered 32-px images, a one-stack 8-channel hourglass, EGL++ with 4
#: neighbours; every strategy unless ``strategies`` is set. Read it through ``micro_config``.
MICRO = {
    "runs": 1,
    "cycles": 2,
    "budget": 6,
    "initial": 12,
    "n_pool": 40,
    "n_test": 12,
    "input_size": 32,
    "model": {"n_stacks": 1, "channels": 8, "depth": 2},
    "base_train": {"epochs": 2, "batch_size": 8},
    "cycle_train": {"epochs": 1, "batch_size": 8},
    "strategy": {"k": 4, "perplexity": 2.0},
}


def micro_config(**overrides) -> dict:
    """A copy of :data:`MICRO` with top-level keys replaced (a section given, such as
    ``strategy``, replaces MICRO's whole section)."""
    return copy.deepcopy({**MICRO, **overrides})


@pytest.fixture(scope="session", name="micro_config")
def micro_config_fixture() -> Callable[..., dict]:
    """:func:`micro_config`, for the tests of every folder (``from conftest import`` finds the
    conftest.py of the folder collected last, not necessarily this one)."""
    return micro_config
