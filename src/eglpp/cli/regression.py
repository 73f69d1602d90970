"""``eglpp regression``: the pool-based active-learning experiment on a table of real data.

Examples::

    eglpp regression --dataset diabetes --runs 10 --out runs/diabetes
    eglpp regression --data my.csv --target price --family gp --strategies egl,random,igs

Writes ``DIR/results.json`` (RMSE) and ``DIR/results_nll.json`` (Gaussian NLL) in the
project's schema, ``table.md`` / ``table.csv`` (and ``_nll`` versions), the learning curves
``learning_curves.png`` / ``learning_curves_nll.png``, and one file per finished run under
``DIR/runs/`` (a rerun of the same command reuses them).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from eglpp.io import check_output, run_lock
from eglpp.regression.datasets import load_csv, load_dataset
from eglpp.regression.ensembles import EnsembleConfig
from eglpp.regression.experiment import ExperimentConfig, run_experiment
from eglpp.regression.registry import strategy_names
from eglpp.regression.skactiveml_adapter import SKACTIVEML_NAMES
from eglpp.report.html import decimals_for
from eglpp.report.summary import write_summary
from eglpp.stats import Summary
from eglpp.tables import holm_line, note

__all__ = ["regression", "summary_table", "write_tables", "GP_SLOWER"]

#: Measured: one run of 4 strategies × 10 cycles on 1,000 rows of ``fair`` took 11.6 s with
#: the gp family and 0.23 s with linear (2 shared CPU cores, 10 members).
GP_SLOWER = 50
#: Rows of the unlabelled pool from which the gp family's time is worth a note.
GP_NOTE_ROWS = 500


def _names(names: tuple[str, ...]) -> str:
    ours = [n for n in names if n not in SKACTIVEML_NAMES]
    theirs = [n for n in names if n in SKACTIVEML_NAMES]
    return f"{', '.join(ours)}; scikit-activeml's {', '.join(theirs)}"


_STRATEGIES = _names(strategy_names())


def regression(
    data: Path | None = typer.Option(None, "--data", help="A CSV with a header; numeric columns."),
    target: str | None = typer.Option(None, "--target", help="Target column of --data."),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Built-in data set: diabetes, star98, randhie, fair, grunfeld, engel, macrodata.",
    ),
    strategies: str = typer.Option(
        "egl,emcm,variance,random", "--strategies", help=f"Comma-separated, of: {_STRATEGIES}."
    ),
    family: str = typer.Option(
        "linear",
        "--family",
        help="Ensemble family: linear (least squares) | gp (scikit-learn Gaussian process: about "
        f"{GP_SLOWER}× the time of linear on 1,000 rows) | mlp (heteroscedastic network).",
    ),
    members: int = typer.Option(10, "--members", help="Bootstrap members K."),
    runs: int = typer.Option(5, "--runs", help="Runs (seeds); the pairs of the t-test."),
    initial: int = typer.Option(20, "--initial", help="Initial random labelled rows."),
    budget: int = typer.Option(10, "--budget", help="Rows labelled per cycle."),
    cycles: int = typer.Option(10, "--cycles", help="Labelling cycles."),
    seed: int = typer.Option(0, "--seed", help="Seed of everything random."),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="Held-out share of rows."),
    max_rows: int | None = typer.Option(
        None, "--max-rows", help="Use a random subset of at most this many rows per run."
    ),
    out: Path = typer.Option(Path("runs/regression"), "--out", help="Output folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Compare active-learning strategies for regression (EGL, Eq. 7/10) on real data.

    Examples:

        eglpp regression --dataset diabetes --runs 10 --out runs/diabetes
        eglpp regression --data my.csv --target price --family gp --out runs/mine

    Strategies: egl (Eq. 7/10), emcm (Eq. 2), variance (Eq. 11), random; the suffixes -diverse
    (a batch by simulating the sequential policy), -density (times the pool density) and
    -diverse-density; and scikit-activeml's gsx, gsy, igs, qbc, emvr, kldiv, skal-emc.
    """
    if (data is None) == (dataset is None):
        raise ValueError("give exactly one of --data FILE.csv (with --target) or --dataset NAME")
    if data is not None:
        if target is None:
            raise ValueError(f"--data {data} needs --target COLUMN (the column to predict)")
        table, task = load_csv(data, target), f"{data.stem}:{target}"
    else:
        table, task = load_dataset(dataset), dataset
    names = tuple(s.strip() for s in strategies.split(",") if s.strip())
    pool_rows = round(min(len(table), max_rows or len(table)) * (1 - test_fraction))
    if family == "gp" and pool_rows >= GP_NOTE_ROWS:
        typer.secho(
            f"note: --family gp fits {members} Gaussian processes every cycle: on {pool_rows} pool "
            f"rows expect about {GP_SLOWER}× the time of --family linear (--max-rows caps the "
            "rows)",
            fg="yellow",
            err=True,
        )
    config = ExperimentConfig(
        strategies=names,
        ensemble=EnsembleConfig(family=family, n_members=members),
        runs=runs,
        initial=initial,
        budget=budget,
        cycles=cycles,
        seed=seed,
        test_fraction=test_fraction,
        max_rows=max_rows,
        task=task,
    )
    console = Console()
    with run_lock(check_output(out), log=console.print):
        rmse, nll = run_experiment(table, config, out, progress=progress)
        summaries = write_tables(out, rmse, nll)
    for summary in summaries:
        console.print(summary_table(summary))
    console.print(f"full tables: {out}/table.md, table_nll.md (and .csv); curves: {out}/*.png")


def write_tables(out: Path, rmse: dict, nll: dict) -> list:
    """table.md, table.csv, learning_curves.png and their ``_nll`` versions; the summaries."""
    return [
        write_summary(results, out, suffix=suffix, curves=f"learning_curves{suffix}.png")[0]
        for results, suffix in ((rmse, ""), (nll, "_nll"))
    ]


def summary_table(summary: Summary) -> Table:
    """A compact rich table: final value and area under the curve, mean ± std and p-value."""
    ref = summary.reference or "none"
    table = Table(
        title=f"{summary.metric} (lower is better), {summary.n_runs} runs; p: one-tailed paired "
        f"t-test that '{ref}' is better (and who is significantly better, either way)",
        caption=holm_line(summary) or None,
    )
    for col in ("strategy", f"final (n={summary.n_labelled[-1]})", "p", "AUC", "p"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    finals = [summary.mean[s][-1] for s in summary.strategies]
    dec = decimals_for(finals + [summary.auc_mean[s] for s in summary.strategies])
    for s in summary.strategies:
        table.add_row(
            s,
            f"{summary.mean[s][-1]:.{dec}f} ± {summary.std[s][-1]:.{dec}f}",
            note(summary, s, len(summary.n_labelled) - 1, digits=dec),
            f"{summary.auc_mean[s]:.{dec}f} ± {summary.auc_std[s]:.{dec}f}",
            note(summary, s, None, digits=dec),
        )
    return table
