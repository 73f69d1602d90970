"""Checking a ``--device`` before any work: a clear error instead of a CUDA traceback later."""

from __future__ import annotations

import torch

__all__ = ["check_device"]


def check_device(device: str | torch.device, option: str = "--device") -> torch.device:
    """``device`` as a :class:`torch.device`, after checking that this machine has it.

    >>> check_device("cpu")
    device(type='cpu')
    >>> check_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: --device 'tpu': not a torch device (expected cpu, cuda or cuda:N)
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{option} {device!r}: not a torch device (expected cpu, cuda or cuda:N)"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
            raise ValueError(
                f"{option} {device!r}: CUDA is not available here (torch {torch.__version__}, "
                f"{build}); use {option} cpu or install a CUDA build of PyTorch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{option} {device!r}: this machine has {torch.cuda.device_count()} GPU(s)"
            )
    elif dev.type != "cpu":
        raise ValueError(f"{option} {device!r}: only cpu and cuda devices are supported")
    return dev
