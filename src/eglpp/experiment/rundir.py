"""The run directory: the one place that names its files (:class:`RunPaths`), and its readers.

Layout (every file written atomically; a step is done when its last file exists)::

    OUT/config.json                      the ExperimentConfig (a resume must match it)
    OUT/numerics.json                    threads, device, torch version (a resume is checked)
    OUT/split.json                       dataset coco: the file's hash and its test images
    OUT/run-00/initial.npy               pool indices labelled before cycle 1
    OUT/run-00/base/model.pt, metrics.json
    OUT/run-00/<strategy>/cycle-01/selection.npz   scores, query_indices (pool space), details
    OUT/run-00/<strategy>/cycle-01/model.pt        the retrained model (and auxiliary head)
    OUT/run-00/<strategy>/cycle-01/metrics.json    done marker of the cycle
    OUT/run-00/<strategy>/cycle-01/explain_gallery.png, explain_tsne.png   (explain_cycle)
    OUT/run-00/<strategy>/labelled.npy   the labelled-cycle array (-1 never, 0 initial, c cycle)
    OUT/results.json, table.md, table.csv, curves.png, timings.md

``config.json`` (:func:`check_config`: a resumed experiment must match the saved settings but
for :data:`EXTENSIBLE` ones) and each cycle's ``selection.npz`` (:func:`save_selection`,
:func:`load_selection`) are read and written here (``split.json``:
:func:`eglpp.experiment.coco_data.check_split`); the loop, the report and the timing table
find every other file through :class:`RunPaths`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eglpp.experiment.config import ExperimentConfig, config_from_dict, config_to_dict
from eglpp.io import StateFileError, atomic_write_bytes, atomic_write_json, read_json

__all__ = [
    "EXTENSIBLE",
    "RunPaths",
    "check_config",
    "check_numerics",
    "numerics",
    "save_selection",
    "load_selection",
]


@dataclass(frozen=True)
class RunPaths:
    """Where every file of a run directory lives (see the module docstring for the layout)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def split(self) -> Path:
        return self.root / "split.json"

    @property
    def numerics(self) -> Path:
        return self.root / "numerics.json"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    def output(self, name: str) -> Path:
        """A summary file beside results.json: table.md, table.csv, curves.png, timings.md."""
        return self.root / name

    def run(self, r: int) -> Path:
        return self.root / f"run-{r:02d}"

    def initial(self, r: int) -> Path:
        return self.run(r) / "initial.npy"

    def base(self, r: int) -> Path:
        return self.run(r) / "base"

    def strategy(self, r: int, s: str) -> Path:
        return self.run(r) / s

    def labelled(self, r: int, s: str) -> Path:
        return self.strategy(r, s) / "labelled.npy"

    def cycle(self, r: int, s: str, c: int) -> Path:
        return self.strategy(r, s) / f"cycle-{c:02d}"

    @staticmethod
    def model(step: Path) -> Path:
        """The checkpoint of a step folder (``base(r)`` or ``cycle(r, s, c)``)."""
        return step / "model.pt"

    @staticmethod
    def metrics(step: Path) -> Path:
        """The metrics of a step folder: its done marker."""
        return step / "metrics.json"

    @staticmethod
    def selection(cycle: Path) -> Path:
        return cycle / "selection.npz"

    @staticmethod
    def explain(cycle: Path, kind: str) -> Path:
        """``explain_gallery.png`` (kind "gallery") or ``explain_tsne.png`` ("tsne")."""
        return cycle / f"explain_{kind}.png"

    @staticmethod
    def explain_rows(cycle: Path) -> Path:
        """``explain_gallery.json``: what each row of the gallery shows, for the report's table."""
        return cycle / "explain_gallery.json"

    @staticmethod
    def scoring_model(cycle: Path) -> Path:
        """The checkpoint that scored ``cycle``'s pool: the previous cycle's, or for cycle 1 the
        run's base model (``cycle`` is ``cycle(r, s, c)``)."""
        c = _index(cycle.name)
        if c <= 1:
            return cycle.parent.parent / "base" / "model.pt"
        return cycle.parent / f"cycle-{c - 1:02d}" / "model.pt"

    def finished_bases(self) -> list[Path]:
        """The base folders whose metrics.json exists, in run order."""
        return sorted(p.parent for p in self.root.glob("run-[0-9]*/base/metrics.json"))

    def finished_cycles(self, strategy: str) -> dict[int, dict[int, Path]]:
        """run -> cycle -> folder of ``strategy``'s finished cycles (metrics.json written)."""
        found: dict[int, dict[int, Path]] = {}
        for m in sorted(self.root.glob(f"run-[0-9]*/{strategy}/cycle-[0-9]*/metrics.json")):
            run, cycle = _index(m.parent.parent.parent.name), _index(m.parent.name)
            found.setdefault(run, {})[cycle] = m.parent
        return found

    def step_metrics(self) -> list[tuple[str, Path]]:
        """(strategy or "base", metrics.json) of every finished step, base models first."""
        bases = [("base", self.metrics(b)) for b in self.finished_bases()]
        cycles = sorted(self.root.glob("run-[0-9]*/*/cycle-[0-9]*/metrics.json"))
        return bases + [(m.parent.parent.name, m) for m in cycles]


def _index(name: str) -> int:
    """The number of a ``run-07`` or ``cycle-03`` folder name."""
    return int(re.fullmatch(r"(?:run|cycle)-(\d+)", name).group(1))


#: Settings added after run folders were first written, with the value that reproduces a folder
#: written before them (read when the saved config.json lacks the key).
LEGACY_DEFAULTS = {"common_random_numbers": False}

#: Settings a resumed experiment may change: it adds runs, strategies or cycles to what is
#: there, or runs on another device, without invalidating anything already computed.
EXTENSIBLE = frozenset({"strategies", "runs", "cycles", "reference", "device", "explain_cycle"})


def check_config(cfg: ExperimentConfig, out: Path) -> None:
    """Write config.json, or check that the one there differs only in EXTENSIBLE settings.

    Parameters
    ----------
    cfg : ExperimentConfig
        The settings of the experiment being started or resumed.
    out : Path
        The run directory; its ``config.json`` is (re)written with ``cfg``.

    Raises
    ------
    StateFileError
        The saved ``config.json`` is not a readable experiment config.
    ValueError
        The saved config differs from ``cfg`` in a setting outside :data:`EXTENSIBLE`.
    """
    path = RunPaths(out).config
    mine = config_to_dict(cfg)
    if path.exists():
        raw = read_json(path)
        saved = {**LEGACY_DEFAULTS, **raw} if isinstance(raw, dict) else raw
        try:
            saved = config_to_dict(config_from_dict(saved, base=cfg, where=str(path)))
        except ValueError as exc:
            raise StateFileError(f"{path}: not a readable experiment config ({exc})") from exc
        diff = sorted(k for k in mine if saved.get(k) != mine[k] and k not in EXTENSIBLE)
        if diff:
            legacy = [f"--set {k}={str(saved[k]).lower()}" for k in diff if k in LEGACY_DEFAULTS]
            hint = f" (this folder predates the setting: resume with {' '.join(legacy)})"
            raise ValueError(
                f"{out} holds a run of another config (differs in: {', '.join(diff)}); "
                f"use another --out or the same settings{hint if legacy else ''}"
            )
        if raw == mine:  # nothing changed: nothing written (a finished run may be read-only)
            return
    atomic_write_json(path, mine)


def numerics(device: str) -> dict[str, Any]:
    """What changes a run's numbers besides its config: CPU threads, device, torch version."""
    return {"threads": torch.get_num_threads(), "device": str(device), "torch": torch.__version__}


def check_numerics(out: Path, current: dict[str, Any]) -> list[str]:
    """Write ``numerics.json``, or compare the one there with ``current``.

    A resume with another thread count is refused (the same seed then gives other base models
    and selections, and the run would mix two trajectories): the message names the ``--threads``
    to pass. Another device or torch version is allowed (a GPU may pick up a CPU run) and
    returned as warnings. The file keeps the first values.
    """
    path = RunPaths(out).numerics
    if not path.exists():
        atomic_write_json(path, current)
        return []
    saved = read_json(path)
    if not isinstance(saved, dict):
        raise StateFileError(f"{path}: expected a JSON object (threads, device, torch)")
    if saved.get("threads") != current["threads"]:
        raise ValueError(
            f"{out} was computed with {saved.get('threads')} CPU thread(s) ({path}), this "
            f"process has {current['threads']}: results depend on it, so resume with "
            f"--threads {saved.get('threads')} (or use another --out)"
        )
    return [
        f"warning: {out} was computed with {key} {saved.get(key)!r} ({path}); this process has "
        f"{current[key]!r}: later steps may differ in the last digits from an uninterrupted run"
        for key in ("device", "torch")
        if saved.get(key) != current[key]
    ]


def save_selection(
    path: Path,
    scores: np.ndarray,
    query: np.ndarray,
    unlabelled: np.ndarray,
    details: dict[str, np.ndarray],
) -> None:
    """Write one cycle's selection as an ``.npz`` file, atomically.

    Parameters
    ----------
    path : Path
        The cycle's ``selection.npz``.
    scores : array (U,)
        The strategy's score of each unlabelled image.
    query : int array (budget,)
        The selected images, as pool indices (stored as ``query_indices``).
    unlabelled : int array (U,)
        Pool indices of the unlabelled images, in the order of ``scores``.
    details : dict of str to array
        The strategy's explanation arrays, each stored as ``detail_<key>``.
    """

    buf = io.BytesIO()
    arrays = {f"detail_{k}": np.asarray(v) for k, v in details.items()}
    np.savez(buf, scores=scores, query_indices=query, unlabelled=unlabelled, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_selection(path: Path) -> dict[str, np.ndarray]:
    """Read a selection written by :func:`save_selection`.

    Parameters
    ----------
    path : Path
        The cycle's ``selection.npz``.

    Returns
    -------
    dict of str to ndarray
        ``scores``, ``query_indices``, ``unlabelled`` and the ``detail_<key>`` arrays.

    Raises
    ------
    StateFileError
        The file is missing or not a readable ``.npz`` archive.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise StateFileError(f"{path}: not a readable selection file ({exc})") from exc
