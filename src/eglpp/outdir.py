"""What an output folder already holds, so that no command replaces another's work unasked.

``eglpp select``, ``eglpp train`` and ``eglpp run`` each write into an ``--out`` folder and each
resumes (or repeats) the same command there. Each leaves files that say what it made
(:data:`MARKERS`): :func:`held` names the first one found. A command refuses a folder that holds
another kind of output, or the same kind made by another command (another selection, a model
trained on other data), with :func:`refusal`: what the folder holds, where it says so, and the
way out (another ``--out``, or ``--overwrite`` where the command has it).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MARKERS", "held", "refusal", "refuse_other_kind"]

#: kind -> (files any one of which marks it, in the order looked for; what it is, in words)
MARKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "selection": (("select_config.json", "selection.csv"), "a selection (eglpp select)"),
    "model": (("train.json", "model.pt"), "a trained model (eglpp train)"),
    "run": (("config.json", "results.json"), "an experiment (eglpp run)"),
}


def held(folder: Path) -> tuple[str, Path] | None:
    """(kind, the marker file found) of what ``folder`` holds, or None for a new or other
    folder. ``config.json`` alone marks a run only beside a ``numerics.json`` or a ``run-00``
    folder (other tools write files of that name too)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for kind, (names, _) in MARKERS.items():
        for name in names:
            marker = folder / name
            if not marker.is_file():
                continue
            if name == "config.json" and not (
                (folder / "numerics.json").is_file() or (folder / "run-00").is_dir()
            ):
                continue
            return kind, marker
    return None


def refusal(folder: Path, what: str, marker: Path, *, overwrite: bool = True) -> str:
    """The one-line refusal: ``folder`` holds ``what`` (as ``marker`` records); what to do."""
    way = "give another --out to keep it" + (", or add --overwrite to replace it" if overwrite
                                              else " (or delete it)")  # fmt: skip
    return f"--out {folder}: holds {what} ({marker.name}); {way}"


def refuse_other_kind(folder: Path, kind: str, *, overwrite: bool = True) -> None:
    """Raise ``ValueError`` (:func:`refusal`) where ``folder`` holds another kind than ``kind``
    (one of :data:`MARKERS`)."""
    found = held(folder)
    if found is not None and found[0] != kind:
        raise ValueError(refusal(folder, MARKERS[found[0]][1], found[1], overwrite=overwrite))
