"""Learning curves with error bands, from a results.json dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from eglpp.io import save_figure
from eglpp.stats import validate_results

__all__ = ["plot_learning_curves"]


def plot_learning_curves(
    results: dict[str, Any], path: str | Path, title: str | None = None, scale: float = 1.0
) -> Path:
    """Plot mean ± one standard deviation over runs for every strategy and save a PNG."""
    validate_results(results)
    x = np.asarray(results["n_labelled"], dtype=float)
    fig = Figure(figsize=(6.4, 4.2), dpi=120)
    ax = fig.subplots()
    for strategy, runs in results["scores"].items():
        v = np.asarray(runs, dtype=float) * scale
        mean = v.mean(axis=0)
        std = v.std(axis=0, ddof=1) if v.shape[0] > 1 else np.zeros_like(mean)
        (line,) = ax.plot(
            x,
            mean,
            marker="o",
            ms=3,
            label=strategy,
            lw=2.2 if strategy in ("egl", "egl++") else 1.4,
        )
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
    arrow = "↑" if results["higher_is_better"] else "↓"
    ax.set_xlabel("labelled items")
    ax.set_ylabel(f"{results['metric']} {arrow}")
    n_runs = len(next(iter(results["scores"].values())))
    ax.set_title(title or f"{results['task']} — mean ± std over {n_runs} runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path)
