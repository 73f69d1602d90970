"""The state folder of the live Label Studio loop (``eglpp label-studio-backend --state``).

The folder is the truth; every file is written atomically (temporary file, then rename), so a
process killed at any moment leaves either the old file or the new one:

- ``annotations/task-<id>.json``: the newest accepted annotation of Label Studio task ``id``
  (one file per task: an updated annotation replaces its file, it is never counted twice):
  ``{"task", "annotation", "updated_at", "image" (the pool's file name), "keypoints"`` (J × 3,
  original px, the skeleton's order) ``, "selection"`` (the image's entry and the model's
  pre-annotation it was checked against, a COCO image and annotation)``, "model_version"}``;
- ``origin.json``: the checkpoint and labelled set the folder started from (their SHA-256
  prefixes): a restart with others is refused;
- ``current.json``: the model that serves, ``{"round", "checkpoint", "model_version",
  "labelled", "trained_on"}`` (``trained_on``: the tasks in its training set); written last by a
  retrain, so a retrain cut short leaves the previous model serving and is simply done again;
- ``rounds/<r>/labelled.json``: round r's training set (the labelled set plus the annotations
  of ``trained_on``), ``rounds/<r>/model.pt`` its fine-tuned checkpoint, ``rounds/<r>/scores``
  the pool scored by it (an ``eglpp select`` folder, resumable).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eglpp.io import StateFileError, atomic_write_json, read_json
from eglpp.pose.skeleton import Skeleton
from eglpp.practitioner.chunks import file_digest
from eglpp.practitioner.coco import coco_document, keypoint_entry
from eglpp.practitioner.merge import merge_annotations

__all__ = ["LiveState", "model_version"]


def model_version(checkpoint: Path) -> str:
    """A checkpoint's model version: the first 12 hex digits of its SHA-256 (as ``eglpp select
    --label-studio`` names its predictions)."""
    return file_digest(Path(checkpoint))[:12]


class LiveState:
    """The state folder ``root`` of a loop on the labelled set ``labelled``."""

    def __init__(self, root: Path, labelled: Path, checkpoint: Path):
        self.root, self.labelled = Path(root), Path(labelled)
        (self.root / "annotations").mkdir(parents=True, exist_ok=True)
        self._same_start(Path(checkpoint))
        if not (self.root / "current.json").is_file():
            self.commit(0, Path(checkpoint).resolve(), self.labelled.resolve(), [])
        current = self.current()
        if Path(current["checkpoint"]).is_file() and model_version(
            Path(current["checkpoint"])
        ) != current["model_version"]:
            raise StateFileError(
                f"{self.root}/current.json: its checkpoint {current['checkpoint']} is not model "
                f"version {current['model_version']} any more (changed by hand?); use a new --state"
            )

    def _same_start(self, checkpoint: Path) -> None:
        """``origin.json``: the checkpoint and labelled set the folder started from; a restart
        with others is refused (its records and models answer those)."""
        origin = {"checkpoint": model_version(checkpoint),
                  "labelled": file_digest(self.labelled)[:12]}  # fmt: skip
        path = self.root / "origin.json"
        if not path.is_file():
            atomic_write_json(path, origin)
            return
        found = read_json(path)
        changed = [f"--{k} (now {origin[k]}, then {found.get(k)})" for k in origin
                   if found.get(k) != origin[k]]  # fmt: skip
        if changed:
            raise StateFileError(
                f"--state {self.root}: made from another {', '.join(changed)} (SHA-256 "
                "prefixes); restart with the flags it was made with, or use a new --state"
            )

    # --- the serving model --------------------------------------------------------------
    def current(self) -> dict:
        current = read_json(self.root / "current.json")
        if not isinstance(current, dict) or not {"round", "checkpoint", "model_version",
                                                 "labelled", "trained_on"} <= set(current):
            raise StateFileError(f"{self.root}/current.json: not a state file of eglpp's loop")
        return current

    def commit(self, round_: int, checkpoint: Path, labelled: Path, trained_on: list[int]) -> dict:
        """Make ``checkpoint`` (round ``round_``, trained on ``labelled``) the serving model."""
        current = {"round": int(round_), "checkpoint": str(checkpoint),
                   "model_version": model_version(checkpoint), "labelled": str(labelled),
                   "trained_on": sorted(int(t) for t in trained_on)}  # fmt: skip
        atomic_write_json(self.root / "current.json", current)
        return current

    def round_dir(self, round_: int) -> Path:
        return self.root / "rounds" / f"{int(round_):04d}"

    # --- the annotations ----------------------------------------------------------------
    def _path(self, task: int) -> Path:
        return self.root / "annotations" / f"task-{int(task)}.json"

    def record(self, task: int) -> dict | None:
        path = self._path(task)
        return read_json(path) if path.is_file() else None

    def records(self) -> list[dict]:
        """Every recorded annotation, by task id."""
        found = [read_json(p) for p in (self.root / "annotations").glob("task-*.json")]
        return sorted(found, key=lambda r: r["task"])

    def write(self, record: dict) -> None:
        atomic_write_json(self._path(record["task"]), record)

    def pending(self) -> list[int]:
        """The annotated tasks that the serving model was not trained on."""
        trained = set(self.current()["trained_on"])
        return [r["task"] for r in self.records() if r["task"] not in trained]

    # --- checks and training sets -------------------------------------------------------
    def check(self, record: dict, skeleton: Skeleton, accept_unchanged: bool) -> None:
        """Merge one annotation into the labelled set in a scratch file: the checks of
        ``eglpp import`` (the image one of the pool's and not labelled, the joints inside the
        image, the pre-annotation corrected unless ``accept_unchanged``); raises their error."""
        scratch = self.root / "scratch" / f"check-{record['task']}.json"
        try:
            self._merge([record], skeleton, scratch, accept_unchanged)
        finally:
            for path in scratch.parent.glob(f"{scratch.stem}*"):
                path.unlink(missing_ok=True)

    def training_set(self, round_: int, records: list[dict], skeleton: Skeleton) -> Path:
        """``rounds/<round_>/labelled.json``: the labelled set plus ``records``."""
        out = self.round_dir(round_) / "labelled.json"
        self._merge(records, skeleton, out, accept_unchanged=True)  # each was checked
        return out

    def _merge(self, records: list[dict], skeleton: Skeleton, out: Path,
               accept_unchanged: bool) -> dict:  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        returned, selection = out.with_name(out.stem + ".returned.json"), out.with_name(
            out.stem + ".selection.json"
        )
        images, anns, sel_images, sel_anns = [], [], [], []
        for k, r in enumerate(records, start=1):
            image = {**r["selection"]["image"], "id": k}
            sel_images.append(image)
            sel_anns.append({**r["selection"]["annotation"], "id": k, "image_id": k})
            images.append({k: image[k] for k in ("id", "file_name", "width", "height")})
            kp = np.asarray(r["keypoints"], np.float64).reshape(-1, 3)
            anns.append(keypoint_entry(k, k, kp[:, :2], kp[:, 2],
                                       r["selection"]["annotation"].get("bbox")))  # fmt: skip
        info = r["selection"].get("info", {}) if records else {}
        atomic_write_json(selection, coco_document(sel_images, sel_anns, skeleton, info))
        atomic_write_json(returned, coco_document(images, anns, skeleton))
        return merge_annotations(self.labelled, returned, selection, out,
                                 accept_unchanged=accept_unchanged)  # fmt: skip
