"""Everything an experiment's report shows, read from its run directory.

The report reads whatever exists and says what it left out: ``results.json`` (or the
regression's ``results_nll.json``; one is required) for Table 1 and the learning curves, and,
for a pose run, every finished step's ``metrics.json``, each cycle's explain figures and
``selection.npz``, found through :class:`eglpp.experiment.rundir.RunPaths`.

A ``metrics.json`` is ``{"metric", "mean", "per_joint": {joint: value}, "n", "n_labelled"}``.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eglpp.experiment.rundir import RunPaths, load_selection
from eglpp.experiment.timing import timing_rows
from eglpp.io import StateFileError, read_json
from eglpp.report.curves import plot_learning_curves
from eglpp.stats import Summary, summarize, validate_results

__all__ = [
    "ResultsPart",
    "JointTable",
    "Figure",
    "SelectionRow",
    "SelectionTable",
    "ReportData",
    "gather",
    "display_scale",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ResultsPart:
    """One results file: its Table 1 summary and learning curves (PNG bytes)."""

    source: str  # file name, e.g. "results.json"
    results: dict[str, Any]
    summary: Summary
    scale: float  # values are shown × scale (100 for pose fractions)
    curves_png: bytes


@dataclass(frozen=True)
class JointTable:
    """Per-joint metric, mean over runs: base model and each strategy after its last cycle."""

    metric: str
    joints: list[str]
    columns: list[str]  # "base", then strategy names
    n_labelled: list[int | None]  # per column
    n_runs: list[int]  # per column: runs that had the file
    per_joint: dict[str, list[float]]  # column -> (J,) values (NaN where never counted)
    mean: dict[str, float]  # column -> the metric's mean (pooled, as in results.json)


@dataclass(frozen=True)
class Figure:
    """One explanation figure of a selection."""

    kind: str  # "gallery" | "tsne"
    strategy: str
    run: int
    cycle: int
    png: bytes


@dataclass(frozen=True)
class SelectionRow:
    """One row of an explained selection's gallery (``explain_gallery.json``)."""

    shown_as: str  # "highest score" | "lowest score" | "selected"
    image: str  # "pool #i": the image's index in the experiment's pool
    score: float
    selected: bool
    neighbours: list[tuple[str, float]]  # (labelled image, weight), as the gallery shows them


@dataclass(frozen=True)
class SelectionTable:
    """The rows of one gallery and what the neighbours' weight is ("p(j|i)", "distance")."""

    weight: str
    rows: list[SelectionRow]


@dataclass(frozen=True)
class ReportData:
    """What the HTML page shows; see :func:`gather`."""

    run_dir: Path
    parts: list[ResultsPart]
    joints: JointTable | None
    figures: list[Figure]
    selections: dict[tuple[str, int, int], SelectionTable]  # (strategy, run, cycle) -> table
    notes: list[str] = field(default_factory=list)  # what was left out, and why
    timings: tuple = ([], [])  # eglpp.experiment.timing.timing_rows of the run directory


def display_scale(results: dict[str, Any]) -> float:
    """100 for pose results (PCK fractions shown in %), 1 otherwise."""
    return 100.0 if str(results.get("task", "")).startswith("pose/") else 1.0


def _finished(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` without strategies that have no finished run yet."""
    scores = results.get("scores")
    if not isinstance(scores, dict):  # validate_results names what is wrong
        return results
    return {**results, "scores": {s: v for s, v in scores.items() if v}}


def _curves(results: dict[str, Any], scale: float) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return plot_learning_curves(results, Path(tmp) / "curves.png", scale=scale).read_bytes()


def _part(path: Path, notes: list[str]) -> ResultsPart | None:
    results = read_json(path)
    if not isinstance(results, dict):
        raise StateFileError(f"{path}: expected a JSON object in the results.json schema")
    results = _finished(results)
    validate_results(results, source=str(path))
    if not results["scores"]:
        notes.append(f"{path.name}: no finished run yet")
        return None
    reference = results["config"].get("reference")
    reference = reference if isinstance(reference, str) else None
    with warnings.catch_warnings():  # scipy warns on near-identical pairs; p is still shown
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            summary = summarize(results, reference if reference in results["scores"] else None)
        except ValueError as exc:  # e.g. strategies with different numbers of runs
            raise ValueError(f"{path}: {exc}") from exc
    scale = display_scale(results)
    return ResultsPart(path.name, results, summary, scale, _curves(results, scale))


def _joint_table(
    run_dir: Path, strategies: list[str], n_initial: int | None, notes: list[str]
) -> JointTable | None:
    paths = RunPaths(run_dir)
    files: dict[str, list[Path]] = {"base": [paths.metrics(b) for b in paths.finished_bases()]}
    for s in strategies:
        runs = paths.finished_cycles(s)
        files[s] = [paths.metrics(c[max(c)]) for _, c in sorted(runs.items()) if c]
    files = {k: v for k, v in files.items() if v}
    if not files:
        notes.append("per-joint table: no run-XX/…/metrics.json files (not a pose run directory)")
        return None
    loaded = {k: [read_json(p) for p in v] for k, v in files.items()}
    first = next(iter(loaded.values()))[0]
    joints = list(first.get("per_joint", {}))
    if not joints:
        notes.append("per-joint table: metrics.json has no per_joint values")
        return None
    per_joint, mean, n_lab = {}, {}, []
    for col, ms in loaded.items():
        for m, p in zip(ms, files[col], strict=True):
            if list(m.get("per_joint", {})) != joints:
                raise StateFileError(f"{p}: per_joint lists other joints than {files['base'][0]}")
        values = np.array([[_num(m["per_joint"][j]) for j in joints] for m in ms])
        with np.errstate(all="ignore"):
            counted = np.isfinite(values).sum(0)
            per_joint[col] = np.where(counted > 0, np.nansum(values, 0) / counted, np.nan).tolist()
        mean[col] = float(np.mean([_num(m["mean"]) for m in ms]))
        n_lab.append(ms[0].get("n_labelled", n_initial if col == "base" else None))
    return JointTable(
        metric=str(first.get("metric", "metric")),
        joints=joints,
        columns=list(loaded),
        n_labelled=n_lab,
        n_runs=[len(v) for v in loaded.values()],
        per_joint=per_joint,
        mean=mean,
    )


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _png(path: Path, notes: list[str]) -> bytes | None:
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        notes.append(f"{path}: not a PNG image, left out")
        return None
    return data


def _selection_table(folder: Path) -> SelectionTable | None:
    """The gallery's rows from ``explain_gallery.json``; for a run written before that file,
    from ``selection.npz`` (the 4 highest and lowest scores, EGL++'s neighbours named by their
    position in the labelled set); None when neither is there."""
    rows_file, selection = RunPaths.explain_rows(folder), RunPaths.selection(folder)
    if rows_file.is_file():
        doc = read_json(rows_file)
        rows = [SelectionRow(r["shown_as"], r["image"], float(r["score"]), bool(r["selected"]),
                             [(str(n), float(w)) for n, w in r["neighbours"]])
                for r in doc["rows"]]  # fmt: skip
        return SelectionTable(str(doc["weight"]), rows)
    if not selection.is_file():
        return None
    sel = load_selection(selection)
    scores, unlabelled = sel["scores"], sel["unlabelled"]
    chosen = set(np.asarray(sel["query_indices"]).tolist())
    nb, p = sel.get("detail_neighbours"), sel.get("detail_p")
    order = np.argsort(-scores, kind="stable")
    n = min(4, max(len(order) // 2, 1))
    rows = []
    for kind, idx in (("highest score", order[:n]), ("lowest score", order[::-1][:n])):
        for i in idx:
            neighbours = []
            if nb is not None and p is not None:
                top = np.argsort(-p[i], kind="stable")[:4]
                neighbours = [(f"labelled-set #{int(nb[i, t])}", float(p[i, t])) for t in top]
            pool = int(unlabelled[i])
            rows.append(SelectionRow(kind, f"pool #{pool}", float(scores[i]), pool in chosen,
                                     neighbours))  # fmt: skip
    return SelectionTable("p(j|i)" if nb is not None else "", rows)


def gather(run_dir: str | Path) -> ReportData:
    """Read the report's content from ``run_dir``; raise naming the file when one is unreadable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a directory (expected a run directory)")
    sources = [run_dir / n for n in ("results.json", "results_nll.json")]
    if not any(p.is_file() for p in sources):
        raise FileNotFoundError(
            f"{run_dir}/results.json: file not found (write it with `eglpp run --out {run_dir}` "
            "or `eglpp regression --out …`)"
        )
    notes: list[str] = []
    parts = [part for p in sources if p.is_file() and (part := _part(p, notes)) is not None]
    strategies = list(parts[0].results["scores"]) if parts else []
    n_initial = parts[0].summary.n_labelled[0] if parts else None
    pose = bool(parts) and display_scale(parts[0].results) == 100.0  # a pose run's folder
    joints = _joint_table(run_dir, strategies, n_initial, notes) if pose else None
    figures, selections = _explained(run_dir, strategies, notes)
    if joints is not None and not figures:
        notes.append("selection figures: no explain_gallery.png / explain_tsne.png found")
    timings = timing_rows(run_dir)
    return ReportData(run_dir, parts, joints, figures, selections, notes, timings)


def _explained(
    run_dir: Path, strategies: list[str], notes: list[str]
) -> tuple[list[Figure], dict[tuple[str, int, int], SelectionTable]]:
    """The explain figures of every finished cycle that has them, and their galleries' rows."""
    figures: list[Figure] = []
    selections: dict[tuple[str, int, int], SelectionTable] = {}
    paths = RunPaths(run_dir)
    for s in strategies:
        for run, cycles in sorted(paths.finished_cycles(s).items()):
            for cycle, folder in sorted(cycles.items()):
                for kind in ("gallery", "tsne"):
                    path = paths.explain(folder, kind)
                    if path.is_file() and (png := _png(path, notes)) is not None:
                        figures.append(Figure(kind, s, run, cycle, png))
                gallery = paths.explain(folder, "gallery").is_file()
                if gallery and (table := _selection_table(folder)) is not None:
                    selections[(s, run, cycle)] = table
    return figures, selections
