"""Test-wide settings: one torch thread, so the suite is fast and steady on a busy machine."""

import os

import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the CLI subprocesses the tests start
