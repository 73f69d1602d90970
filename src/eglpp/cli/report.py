"""``eglpp report``: write an experiment's self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from eglpp.io import check_output
from eglpp.report.html import write_report

__all__ = ["report"]


def report(
    run_dir: Path = typer.Argument(
        ..., help="A run directory: `eglpp run --out` or `eglpp regression --out`."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="The HTML file to write (default: RUN_DIR/report.html)."
    ),
    title: str | None = typer.Option(None, "--title", help="Page title (default: the task)."),
) -> None:
    """Write one self-contained HTML page of an experiment (no network; images embedded).

    Example:

        eglpp report runs/quick    # writes runs/quick/report.html

    It shows the Table 1 analogue with p-values, the learning curves, the per-joint metric, and
    the galleries and t-SNE maps of the explained selections, skipping what the folder lacks.
    """

    if out is not None:
        check_output(out, folder=False)
    path = write_report(run_dir, out, title=title)
    size = path.stat().st_size / 1e6
    typer.echo(f"wrote {path} ({size:.1f} MB); open it in any browser")
