"""``eglpp run``: the paper's pose experiment (Table 1) as one resumable command."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import typer
import yaml
from rich.console import Console

from eglpp.cli.run_dataset import dataset_flags, fit_to_file
from eglpp.cli.run_jobs import launch_ranks, launched
from eglpp.devices import check_device
from eglpp.distributed import launch_env
from eglpp.experiment.config import PRESETS, config_from_dict, preset
from eglpp.experiment.loop import default_jobs
from eglpp.experiment.ranks import run_ranks
from eglpp.experiment.rundir import RunPaths
from eglpp.experiment.timing import timing_table
from eglpp.io import atomic_write_text, check_output, run_lock
from eglpp.outdir import refuse_other_kind
from eglpp.report.explain import explain_selection
from eglpp.report.summary import write_summary

__all__ = ["run", "finish_report", "apply_settings"]


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise typer.BadParameter(f"{path}: file not found", param_hint="--config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path}: not valid YAML ({exc})", param_hint="--config") from exc
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: must hold a mapping of settings", param_hint="--config")
    return data


def apply_settings(overrides: dict[str, Any], settings: list[str]) -> dict[str, Any]:
    """Merge ``--set KEY=VALUE`` items into ``overrides`` (nested keys dotted, values YAML).

    >>> apply_settings({"runs": 3}, ["strategy.egl++.estimator=approx", "runs=2"])
    {'runs': 2, 'strategy': {'egl++': {'estimator': 'approx'}}}
    """
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            msg = f"{item!r}: value is not YAML ({exc})"
            raise typer.BadParameter(msg, param_hint="--set") from exc
        *parents, leaf = key.strip().split(".")
        node = overrides
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise typer.BadParameter(f"{item!r}: {name} is not a group", param_hint="--set")
        node[leaf] = value
    return overrides


def log_lines(console: Console) -> Callable[[str], None]:
    """The experiment's log: rich's timed lines on a terminal; in a file or a pipe, one
    unwrapped ``[HH:MM:SS] message`` line each (rich would wrap them at 80 columns)."""
    if console.is_terminal:
        return console.log

    def log(message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        console.print(f"[{stamp}] {message}", soft_wrap=True, highlight=False, markup=False)

    return log


def finish_report(results: dict, out: Path, console: Console) -> None:
    """Print Table 1 and write table.md, table.csv, curves.png beside results.json."""
    if not any(results["scores"].values()):
        console.print("[yellow]no finished run yet: nothing to summarise[/yellow]")
        return
    _, table = write_summary(results, out, scale=100.0, digits=2)
    console.print(table, soft_wrap=True, markup=False, highlight=False)
    timings = timing_table(out)
    if timings is not None:
        atomic_write_text(RunPaths(out).output("timings.md"), timings)
        console.print(timings, soft_wrap=True, markup=False, highlight=False)
    console.print(f"wrote {out / 'results.json'}, table.md, table.csv, curves.png, timings.md")
    console.print(f"next: eglpp report {out}   (one HTML page: Table 1, curves, what was selected)")


def run(
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Run directory (resumable; default runs/PRESET). A folder holding another run, a "
        "selection or a model is refused.",
    ),
    preset_name: str = typer.Option(
        "quick", "--preset", help=f"One of {', '.join(PRESETS)}: sizes everything at once."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML file of settings over the preset (unknown keys rejected)."
    ),
    dataset: str | None = typer.Option(
        None,
        help="synthetic | lsp-lspet-rendered | lsp | lspet | mpii | coco:FILE.json (your own "
        "labelled COCO keypoints: a tenth of its images, drawn by --seed, is the test set, "
        "recorded in OUT/split.json; the rest is the pool)",
    ),
    data_root: Path | None = typer.Option(None, help="Dataset folder for lsp, lspet, mpii."),
    images: Path | None = typer.Option(
        None, help="coco:FILE: the folder of its images (default: its info.images_root, else "
        "the file's folder)."
    ),
    poses: Path | None = typer.Option(
        None, help="lsp-lspet-rendered: folder with lsp/joints.mat and lspet/joints.mat."
    ),
    strategies: str | None = typer.Option(
        None, help="Comma-separated: random,coreset,multipeak,learning-loss,egl++"
    ),
    runs: int | None = typer.Option(None, help="Runs (seeds), each with its own base model."),
    cycles: int | None = typer.Option(None, help="Active-learning cycles per strategy."),
    budget: int | None = typer.Option(None, help="Images annotated per cycle."),
    initial: int | None = typer.Option(None, help="Random pool images labelled at the start."),
    seed: int | None = typer.Option(None, help="Experiment seed (same seed, same selections)."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1, …"),
    threads: int | None = typer.Option(
        None, help="CPU threads for torch, per process (default: 1 on ≤ 2 cores, else torch's)."
    ),
    jobs: int | None = typer.Option(
        None,
        envvar="EGLPP_JOBS",
        help="Processes (torchrun ranks) running base models and strategies side by side "
        "(default: CPU cores // threads; with --device cuda, the GPUs, one each); the same "
        "results for any N.",
    ),
    max_memory: str | None = typer.Option(
        None,
        help="Memory EGL++'s gradient norms may take per chunk of (image, neighbour) "
        "pairs, e.g. 8GiB (scoring.max_memory).",
    ),
    settings: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Any setting KEY=VALUE, repeatable, nested keys dotted "
        "(strategy.egl++.estimator=approx, scoring.gradnorm_method=hooks).",
    ),
) -> None:
    """Run the pose active-learning experiment and print the Table 1 analogue.

    Example: eglpp run --preset tiny --out runs/tiny

    Rerunning the same command resumes where it stopped; without --out, each preset has its
    own folder, runs/PRESET. ``--jobs N`` (default: cores // threads on a CPU, the GPUs with
    --device cuda) starts N torchrun ranks that train the base models and then each (run,
    strategy) side by side, with the same results as one process; ``torchrun … -m eglpp run``
    does the same on many GPUs or nodes (a shared file system holding --out).
    """
    if threads is not None:
        if threads < 1:
            raise typer.BadParameter(f"must be >= 1, got {threads}", param_hint="--threads")
        torch.set_num_threads(threads)
    if jobs is not None and jobs < 1:
        raise typer.BadParameter(f"must be >= 1, got {jobs}", param_hint="--jobs")

    console = Console(log_path=False)  # no source-file column on the log lines
    overrides: dict[str, Any] = _load_yaml(config) if config else {}
    flags = {
        **dataset_flags(dataset, data_root, images),
        "poses": None if poses is None else str(poses),
        "strategies": strategies,
        "runs": runs,
        "cycles": cycles,
        "budget": budget,
        "initial": initial,
        "seed": seed,
        "device": device,
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    if max_memory is not None:
        overrides.setdefault("scoring", {})["max_memory"] = max_memory
    overrides = apply_settings(overrides, settings)
    try:
        cfg = config_from_dict(
            overrides, base=preset(preset_name), where=str(config) if config else "flags"
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    cfg = fit_to_file(cfg, overrides)  # coco:FILE: its keypoints
    check_device(cfg.device)  # before a process group or any data
    out = Path("runs") / preset_name if out is None else out  # one preset, one folder
    refuse_other_kind(out, "run", overwrite=False)
    check_output(out)
    rank, world, _ = launch_env()
    if world == 1 and (jobs or default_jobs(cfg)) > 1:  # the ranks, started for the user
        launch_ranks(jobs or default_jobs(cfg), cfg, out, preset_name, console)
        return
    if world > 1 and jobs not in (None, 1, world):
        raise typer.BadParameter(f"under torchrun each of the {world} ranks is one process, "
                                 f"got {jobs}", param_hint="--jobs")  # fmt: skip
    alone = not launched() and rank == 0  # eglpp run --jobs prints and locks for its ranks
    if alone:
        console.print(f"[bold]eglpp run[/bold] preset={preset_name} → {out}")
    with run_lock(out, log=console.print) if alone else contextlib.nullcontext():
        log = log_lines(console)
        results = _record(run_ranks)(cfg, out, log=log, explain=explain_selection)
        if results is not None:
            finish_report(results, out, console)


def _record(fn: Callable) -> Callable:
    """``fn`` that, on a rank of torchrun, leaves its error for the agent to report."""
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(fn) if launch_env()[1] > 1 else fn
