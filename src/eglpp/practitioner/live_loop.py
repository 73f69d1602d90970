"""The live active-learning loop behind ``eglpp label-studio-backend``, as a library.

:class:`LiveLoop` holds the serving model of a state folder (:mod:`.live_state`) and answers
what Label Studio's ML backend protocol asks, with no HTTP of its own:

- :meth:`LiveLoop.predictions`: for each task, the model's keypoints (Label Studio percent
  coordinates, :func:`~eglpp.practitioner.label_studio_config.keypoint_result`), the strategy's
  score s as the prediction's ``score`` (:func:`prediction_score`: s divided by the pool's
  highest, into the [0, 1] that Label Studio requires; the most wanted task scores 1: sort the
  Data Manager by it, descending) and ``model_version``. The scores come from one scoring of
  the whole pool per model version (:func:`~eglpp.practitioner.run.run_select` with every
  candidate selected, in
  ``rounds/<r>/scores``, resumable), cached in memory by model version.
- :meth:`LiveLoop.annotate`: one Label Studio annotation checked as ``eglpp import`` checks
  (:meth:`.LiveState.check`) and recorded; an updated annotation replaces its task's record.
- :meth:`LiveLoop.retrain`: the serving model fine-tuned on the labelled set plus every
  recorded annotation, the pool scored by the new model, then (last) the new model made current.

A task names its pool image by ``data.eglpp_image`` (the pool's file name), else by the file
name of ``data.image`` (Label Studio's upload prefix ``1a2b3c4d-`` removed).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eglpp.io import read_json
from eglpp.pose.checkpoint import load_model, save_checkpoint
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.train import TrainConfig, fit
from eglpp.practitioner.coco import coco_to_annotations, read_coco
from eglpp.practitioner.label_studio_config import (
    annotation_keypoints,
    keypoint_result,
    label_config,
    project_joints,
)
from eglpp.practitioner.labelled import load_labelled
from eglpp.practitioner.live_state import LiveState, model_version
from eglpp.practitioner.pool import read_pool
from eglpp.practitioner.run import _candidates, run_select
from eglpp.practitioner.select import SelectConfig
from eglpp.seeds import stable_seed

__all__ = ["LiveLoop", "RetrainConfig", "UnknownTask", "PoolScores", "prediction_score"]

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def prediction_score(score: float, top: float, bottom: float = 0.0) -> float:
    """A strategy's score s as a Label Studio prediction score, which must lie in [0, 1]
    (Label Studio 1.23 drops an imported prediction scored outside): (s − b) / (t − b), with t
    the highest score of the model version's pool and b = min(0, its lowest). Linear, so the
    order is the strategy's and, for scores ≥ 0 (EGL++, Core-set, entropy), their ratios too:
    the most wanted task scores 1, one half as informative 0.5. A pool whose scores are all
    equal scores 0.

    >>> [prediction_score(s, top=0.02) for s in (0.0, 0.005, 0.01, 0.02)]
    [0.0, 0.25, 0.5, 1.0]
    >>> prediction_score(-1.0, top=3.0, bottom=-1.0), prediction_score(1.0, top=3.0, bottom=-1.0)
    (0.0, 0.5)
    """
    low = min(0.0, float(bottom))
    if not float(top) > low:
        return 0.0
    return min(1.0, max(0.0, (float(score) - low) / (float(top) - low)))


class UnknownTask(LookupError):
    """A task whose image is not in the pool."""


@dataclass(frozen=True)
class RetrainConfig:
    """How the serving model is fine-tuned after every ``every`` new annotations (0: never)."""

    every: int = 10
    epochs: int = 5
    lr: float = 2.5e-4
    batch_size: int = 16

    def __post_init__(self) -> None:
        bad = [f"--retrain-{k.replace('_', '-')} {v!r}" for k, v, ok in (
            ("every", self.every, self.every >= 0), ("epochs", self.epochs, self.epochs >= 1),
            ("lr", self.lr, self.lr > 0), ("batch_size", self.batch_size, self.batch_size >= 1))
            if not ok]  # fmt: skip
        if bad:
            raise ValueError(f"{', '.join(bad)}: expected every >= 0, the others > 0")


@dataclass(frozen=True)
class PoolScores:
    """One model version's scores: pool file name -> (its selection image, its annotation:
    the predicted keypoints and ``score``)."""

    version: str
    images: dict[str, tuple[dict, dict]]
    info: dict

    @functools.cached_property
    def span(self) -> tuple[float, float]:
        """(highest, lowest) score of the version's pool."""
        scores = [float(ann["score"]) for _, ann in self.images.values()] or [0.0]
        return max(scores), min(scores)

    def prediction_score(self, name: str) -> float:
        """The Label Studio score of pool image ``name`` (:func:`prediction_score`)."""
        return prediction_score(self.images[name][1]["score"], *self.span)

    def ranking(self) -> list[str]:
        """The pool's candidates, most wanted first."""
        return sorted(self.images, key=lambda n: -self.images[n][1]["score"])


class LiveLoop:
    """The loop of a state folder (see the module docstring)."""

    def __init__(self, state: Path, checkpoint: Path, labelled: Path, pool: Path,
                 config: SelectConfig, retrain: RetrainConfig = RetrainConfig(), *,
                 accept_unchanged: bool = False, log: Callable[[str], None] = print):  # fmt: skip
        self.pool, self.config, self.retrain_config = Path(pool), config, retrain
        self.accept_unchanged, self.log = accept_unchanged, log
        self.skeleton = load_labelled(labelled).annotations.skeleton
        self.state = LiveState(state, labelled, checkpoint)
        self.pool_names = read_pool(self.pool).names
        self.names = project_joints({"label_config": label_config(self.skeleton)}, self.skeleton)
        self._scores: dict[str, PoolScores] = {}
        self._lock = threading.Lock()  # one writer of the records at a time
        self._scoring = threading.Lock()  # one scoring at a time

    def use_label_config(self, project: dict) -> None:
        """Read annotations with ``project``'s labelling config (its joints' labels)."""
        self.names = project_joints(project, self.skeleton)

    # --- scores and predictions ---------------------------------------------------------
    def scores(self, current: dict | None = None) -> PoolScores:
        """The scores of ``current`` (default the serving model), computed once per version."""
        current = current or self.state.current()
        version = current["model_version"]
        if version in self._scores:  # no lock: the serving version never waits for a new one
            return self._scores[version]
        with self._scoring:
            if version not in self._scores:
                out = self.state.round_dir(current["round"]) / "scores"
                lab = load_labelled(current["labelled"])
                n = len(_candidates(self.pool, lab, 1)[0])
                config = dataclasses.replace(self.config, budget=n, sheet_rows=1)
                run_select(current["checkpoint"], current["labelled"], self.pool, out, config,
                           progress=False, log=self.log, overwrite=True)  # fmt: skip
                doc = read_json(out / "selection_coco.json")
                anns = {a["image_id"]: a for a in doc["annotations"]}
                images = {im["file_name"]: (im, anns[im["id"]]) for im in doc["images"]}
                serving = self.state.current()["model_version"]  # kept: it may still serve
                kept = {v: s for v, s in self._scores.items() if v == serving}
                self._scores = {**kept, version: PoolScores(version, images, doc.get("info", {}))}
        return self._scores[version]

    def image_of(self, task: dict) -> str:
        """The pool file name of a task (see the module docstring); UnknownTask if none."""
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            raise UnknownTask(f"task {task.get('id') if isinstance(task, dict) else task!r}: "
                              "no data")  # fmt: skip
        given = data.get("eglpp_image") or str(data.get("image") or "").split("?")[0]
        for name in (given, Path(given).name, _UPLOAD_PREFIX.sub("", Path(given).name)):
            if name in self.pool_names:
                return name
        by_base = [n for n in self.pool_names if Path(n).name == Path(given).name]
        if len(by_base) == 1:
            return by_base[0]
        raise UnknownTask(
            f"task {task.get('id')}: its image {given!r} is not in the pool {self.pool} (a task "
            "names its image by data.eglpp_image, the pool's file name, or data.image)"
        )

    def predictions(self, tasks: list[dict]) -> list[dict]:
        """One prediction per task, in order; a task whose image is labelled already gets an
        empty result (nothing to predict, nothing to rank)."""
        scores = self.scores()
        out = []
        for task in tasks:
            name = self.image_of(task)
            if name not in scores.images:
                out.append({"result": [], "score": 0.0, "model_version": scores.version})
                continue
            image, ann = scores.images[name]
            kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
            result = keypoint_result(kp[:, :2], kp[:, 2], (image["width"], image["height"]),
                                     self.names)  # fmt: skip
            out.append({"result": result, "score": scores.prediction_score(name),
                        "model_version": scores.version})  # fmt: skip
        return out

    # --- annotations --------------------------------------------------------------------
    def annotate(self, task: dict, annotation: dict) -> dict:
        """Check and record one annotation of ``task``; returns ``{"task", "image", "new"
        (a task not recorded before), "pending" (annotations the serving model lacks)}``."""
        name = self.image_of(task)
        task_id = int(task["id"])
        with self._lock:
            before = self.state.record(task_id)
            if before and (before["annotation"], before["updated_at"]) == (
                annotation.get("id"), annotation.get("updated_at")
            ):  # the same annotation again (a webhook and a sync): nothing to do
                return {"task": task_id, "image": name, "new": False,
                        "pending": len(self.state.pending())}  # fmt: skip
            selection = before["selection"] if before else self._selection(name, task_id)
            where = f"task {task_id} ({name})"
            size = (selection["image"]["width"], selection["image"]["height"])
            kp = annotation_keypoints(annotation, size, self.names, self.skeleton.n_joints, where)
            record = {"task": task_id, "annotation": annotation.get("id"),
                      "updated_at": annotation.get("updated_at"), "image": name,
                      "keypoints": kp.tolist(), "selection": selection,
                      "model_version": self.state.current()["model_version"]}  # fmt: skip
            self.state.check(record, self.skeleton, self.accept_unchanged)
            self.state.write(record)
            return {"task": task_id, "image": name, "new": before is None,
                    "pending": len(self.state.pending())}  # fmt: skip

    def _selection(self, name: str, task_id: int) -> dict:
        """The serving model's entry of pool image ``name``: what an annotation is checked
        against; an error for an image labelled already or annotated in another task."""
        other = [r["task"] for r in self.state.records() if r["image"] == name]
        if other:
            raise ValueError(f"task {task_id} ({name}): the image is annotated already, in "
                             f"task {other[0]}")  # fmt: skip
        scores = self.scores()
        if name not in scores.images:
            raise ValueError(f"task {task_id} ({name}): the image is in the labelled set "
                             f"{self.state.labelled} already")  # fmt: skip
        image, ann = scores.images[name]
        return {"image": image, "annotation": ann, "info": scores.info}

    # --- retraining ---------------------------------------------------------------------
    def due(self) -> bool:
        every = self.retrain_config.every
        return every > 0 and len(self.state.pending()) >= every

    def retrain(self) -> dict:
        """Fine-tune on every recorded annotation, score the pool, then serve the new model
        (``current.json``, written last); returns the new current."""
        with self._lock:
            records, current = self.state.records(), self.state.current()
        r = current["round"] + 1
        labelled = self.state.training_set(r, records, self.skeleton)
        checkpoint = self.state.round_dir(r) / "model.pt"
        self.fine_tune(Path(current["checkpoint"]), labelled, checkpoint, seed=r)
        new = {"round": r, "checkpoint": str(checkpoint), "labelled": str(labelled)}
        self.scores({**new, "model_version": model_version(checkpoint)})
        return self.state.commit(r, checkpoint, labelled, [x["task"] for x in records])

    def fine_tune(self, checkpoint: Path, labelled: Path, out: Path, seed: int) -> Path:
        """``checkpoint`` trained ``epochs`` more on ``labelled``, saved to ``out``."""
        model = load_model(checkpoint)
        annotations = coco_to_annotations(read_coco(labelled))
        data = ImagePoseDataset(annotations, input_size=self.config.input_size,
                                seed=stable_seed(self.config.seed, "retrain", seed), train=True)
        rc = self.retrain_config
        config = TrainConfig(epochs=rc.epochs, batch_size=rc.batch_size, lr=rc.lr,
                             optimizer="adam", sigma=self.config.sigma)  # fmt: skip
        fit(model, data, config, seed=stable_seed(self.config.seed, "retrain", seed),
            device=self.config.device, progress=False)  # fmt: skip
        return save_checkpoint(out, model)
