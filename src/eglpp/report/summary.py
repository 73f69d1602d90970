"""The tables and learning curves written beside a ``results.json`` (pose and regression)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eglpp.io import atomic_write_text
from eglpp.report.curves import plot_learning_curves
from eglpp.stats import Summary, summarize
from eglpp.tables import to_csv, to_markdown

__all__ = ["write_summary"]


def write_summary(
    results: dict[str, Any],
    out: Path,
    *,
    suffix: str = "",
    curves: str = "curves.png",
    scale: float = 1.0,
    digits: int = 3,
) -> tuple[Summary, str]:
    """Write ``table{suffix}.md``, ``table{suffix}.csv`` and the ``curves`` PNG into ``out``.

    The p-values test against the config's ``reference`` when it ran (else against EGL++ or EGL,
    :func:`eglpp.stats.summarize`). Returns the summary and the Markdown table.
    """
    reference = (results.get("config") or {}).get("reference")
    summary = summarize(results, reference if reference in results["scores"] else None)
    table = to_markdown(summary, scale=scale, digits=digits)
    atomic_write_text(out / f"table{suffix}.md", table)
    atomic_write_text(out / f"table{suffix}.csv", to_csv(summary))
    plot_learning_curves(results, out / curves, scale=scale)
    return summary, table
