"""Where an experiment's time goes: phase timers and the per-strategy timing table.

The loop times each phase of a cycle (scoring the pool, fitting Learning Loss's head, training,
evaluating) and of each run's base model, and stores the seconds in that step's
``metrics.json`` under ``"seconds"``. :func:`timing_table` gathers them over a run directory:
the answer to "what bounds this experiment" (on a GPU usually training; with exact EGL++ on a
large pool, scoring). A phase that was resumed from saved state is not timed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from eglpp.experiment.rundir import RunPaths
from eglpp.io import read_json

__all__ = ["PhaseTimer", "timing_rows", "timing_table", "NOTE"]

PHASES = ("score", "aux", "train", "evaluate")
NOTE = "Seconds per timed cycle (base model: per run), phases averaged over the timed cycles."


class PhaseTimer:
    """Accumulates wall-clock seconds per phase (CUDA work is synchronised at both ends).

    >>> timer = PhaseTimer("cpu")
    >>> with timer("train"):
    ...     pass
    >>> sorted(timer.seconds)
    ['train']
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.seconds: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.synchronize(self.device)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


def timing_rows(out: str | Path) -> tuple[list[str], list[tuple[str, int, list[float | None]]]]:
    """``(phases, rows)``: for each strategy (and "base model") the number of timed cycles and
    the mean seconds per timed cycle of each phase (None: never run), from the ``metrics.json``
    files under ``out``; ``rows`` is empty when nothing was timed."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    for step, path in RunPaths(Path(out)).step_metrics():
        seconds = read_json(path).get("seconds")
        if not seconds:
            continue
        name = "base model" if step == "base" else step
        counts[name] += 1
        for phase, value in seconds.items():
            sums[name][phase] += float(value)
    phases = [p for p in PHASES if any(p in s for s in sums.values())]
    rows = [
        (name, counts[name], [s[p] / counts[name] if p in s else None for p in phases])
        for name, s in sums.items()
    ]
    return phases, rows


def timing_table(out: str | Path) -> str | None:
    """Markdown table of :func:`timing_rows` (None when nothing was timed)."""
    phases, rows = timing_rows(out)
    if not rows:
        return None
    lines = [
        "| step | timed | " + " | ".join(f"{p} s" for p in phases) + " | total s |",
        "|---" * (len(phases) + 3) + "|",
    ]
    for name, n, means in rows:
        cells = ["—" if m is None else f"{m:.2f}" for m in means]
        total = sum(m for m in means if m is not None)
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + f" | {total:.2f} |")
    return "\n".join(lines) + f"\n\n{NOTE}\n"
