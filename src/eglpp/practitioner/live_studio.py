"""The live loop's calls to Label Studio's API (:class:`~.label_studio.LabelStudio`, token
in ``LABEL_STUDIO_API_KEY``).

:func:`sync_annotations` records every submitted annotation of the project that the state
folder lacks or holds in an older version (the newest annotation of a task counts, as in
``eglpp import --label-studio``): webhooks that arrived while the backend was down are not lost.
:func:`replace_predictions` gives every open task (no submitted annotation) the serving model's
prediction, deleting that task's predictions of other model versions, and makes the serving
version the project's model version: sorted by prediction score, the queue follows the model.
Two requests replace them all (Label Studio's Data Manager action ``delete_tasks_predictions``,
then ``/api/projects/<id>/import/predictions``), not two per task.
"""

from __future__ import annotations

from collections.abc import Callable

from eglpp.pose.datasets.base import AnnotationError
from eglpp.practitioner.label_studio import LabelStudio, LabelStudioError
from eglpp.practitioner.label_studio_tasks import _newest
from eglpp.practitioner.live_loop import LiveLoop, UnknownTask

__all__ = ["sync_annotations", "replace_predictions", "submitted"]

Log = Callable[[str], None]


def submitted(task: dict) -> list[dict]:
    """A task's submitted (not cancelled) annotations."""
    return [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]


def sync_annotations(loop: LiveLoop, client: LabelStudio, project: int, log: Log = print) -> dict:
    """Record the project's submitted annotations the state lacks; returns the counts
    ``{"recorded", "known", "refused"}`` (a refused one is logged with its reason)."""
    counts = {"recorded": 0, "known": 0, "refused": 0}
    for task in client.tasks(project):
        done = submitted(task)
        if not done:
            continue
        ann = _newest(done)
        before = loop.state.record(task["id"])
        if before and (before["annotation"], before["updated_at"]) == (
            ann.get("id"), ann.get("updated_at")
        ):
            counts["known"] += 1
            continue
        try:
            loop.annotate(task, ann)
            counts["recorded"] += 1
        except (UnknownTask, AnnotationError, LabelStudioError, ValueError) as exc:
            counts["refused"] += 1
            log(f"label studio: task {task['id']} not recorded: {exc}")
    return counts


def replace_predictions(loop: LiveLoop, client: LabelStudio, project: int,
                        log: Log = print) -> int:  # fmt: skip
    """Give the open tasks the serving model's predictions (see the module docstring); the
    number of predictions made."""
    open_tasks = [t for t in client.tasks(project) if not submitted(t)]
    known = []
    for task in open_tasks:
        try:
            loop.image_of(task)
            known.append(task)
        except UnknownTask as exc:
            log(f"label studio: no prediction for {exc}")
    todo, made = [], []
    for task, prediction in zip(known, loop.predictions(known), strict=True):
        versions = [p.get("model_version") for p in task.get("predictions") or []
                    if isinstance(p, dict)]  # fmt: skip
        if versions != [prediction["model_version"]]:  # not made before (a restart): made now
            todo.append(task["id"])
            if prediction["result"]:
                made.append({"task": task["id"], **prediction})
    if todo:  # two requests, whatever the number of tasks; cut short, redone at the next start
        client.request("POST", "/api/dm/actions", json={
            "selectedItems": {"all": False, "included": todo}},
            params={"id": "delete_tasks_predictions", "project": int(project)})  # fmt: skip
    if made:
        answer = client.request("POST", f"/api/projects/{int(project)}/import/predictions",
                                json=made)  # fmt: skip
        if answer.get("created") != len(made):  # Label Studio drops what it finds invalid
            raise LabelStudioError(f"--project {project}: Label Studio made {answer.get('created')}"
                                   f" of {len(made)} predictions (its log says why)")  # fmt: skip
    client.set_model_version(project, loop.state.current()["model_version"])
    log(f"label studio: {len(made)} predictions of model version "
        f"{loop.state.current()['model_version']} in project {project}")  # fmt: skip
    return len(made)
