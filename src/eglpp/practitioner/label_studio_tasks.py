"""Label Studio projects, tasks and annotations for ``eglpp select/import --label-studio``.

The labelling config and the keypoint conversions are :mod:`eglpp.practitioner.label_studio_config`.

:func:`push_selection` turns an ``eglpp select`` folder into one task per selected image: the
image is *uploaded* to the project (``/api/projects/ID/import`` without making a task; then one
JSON import makes the tasks with their predictions). Uploading works with any server, local or
remote, with no setting on the server; Label Studio's local-files storage would avoid the copy
but needs the server started with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED`` and a document
root, a storage added to each project, and the server to see eglpp's disk. A task's data holds
``image`` (the upload), ``eglpp_image`` (the selection's ``file_name``), ``eglpp_selection``
(:func:`selection_fingerprint`), ``eglpp_rank``, ``eglpp_score``, ``eglpp_strategy``,
``eglpp_neighbours`` (the top labelled neighbours with p(j|i) for EGL++, the nearest labelled
images with their distance otherwise, as in ``selection.csv``) and ``eglpp_reasons`` (the
same in words, shown by the Header). Its prediction holds the predicted joints of
``selection_coco.json`` (occluded ones ticked occluded), ``model_version`` the checkpoint's
fingerprint (the first 12 hex digits of its SHA-256; made the project's model version, since
Label Studio shows annotators, and orders by, the predictions of that version only, and keeps
the first version imported otherwise), and ``score`` :func:`prediction_score`:
the task's place in eglpp's order, (rank − 1) / n for n selected images, 0 for eglpp's first
choice. Label Studio reads a prediction's score as the model's confidence, lowest first: its
"Uncertainty sampling" serves the task of lowest score next, and its Data Manager shows the
score as a percentage and sorts by it; so its orderings follow eglpp's (the strategy's own
score, higher = more wanted, is ``eglpp_score`` in the task's data). With ``--pre-annotate
empty`` there is no prediction, hence no score. An interruption between an upload and its task
import leaves an unused upload on the server, never a task without its data. A task already in
the project for this selection and image is never made again: a rerun makes only the missing
tasks (an interrupted upload resumes).

:func:`pull_annotations` reads the tasks of one selection (by fingerprint) and returns the
finished ones as a COCO keypoints document (image and annotation ids are the task ids) that
``eglpp import`` then merges through the same validation as a tool's COCO export
(:func:`eglpp.practitioner.merge.merge_annotations`); tasks without a submitted annotation are
listed as open, not imported. The newest submitted annotation of a task counts (the latest
``updated_at``, then the highest id). :func:`import_label_studio` merges them: a task submitted
with the prediction unchanged is left out and listed as still open (unless
``accept_unchanged``), and a task already merged into ``--labelled`` (an import from the file
the previous import wrote) is skipped and listed.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from eglpp.io import atomic_write_json, read_json
from eglpp.pose.skeleton import BUILT_IN
from eglpp.practitioner.chunks import file_digest
from eglpp.practitioner.coco import coco_document, keypoint_entry, read_coco
from eglpp.practitioner.label_studio import LabelStudio, LabelStudioError
from eglpp.practitioner.label_studio_config import (
    ProjectJoints,
    annotation_keypoints,
    keypoint_result,
    label_config,
    project_joints,
)
from eglpp.practitioner.merge import merge_annotations

__all__ = [
    "SKELETONS",
    "ProjectJoints",
    "label_config",
    "project_joints",
    "selection_fingerprint",
    "push_selection",
    "pull_annotations",
    "import_label_studio",
    "keypoint_result",
    "prediction_score",
]

SKELETONS = dict(BUILT_IN)  # lsp, mpii, coco17; any other: a COCO file's (cli)
_BATCH = 20  # images uploaded per task import: what an interruption can lose at most
Log = Callable[[str], None]


def selection_fingerprint(summary: dict) -> str:
    """What identifies a selection: its scoring fingerprint and the images chosen, in order."""
    text = summary["fingerprint"] + "\n" + "\n".join(summary["selected"])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _selection_files(selection: Path) -> tuple[Path, dict]:
    """(``selection_coco.json``, ``summary.json``) of an ``eglpp select`` folder or its file."""
    folder = selection if selection.is_dir() else selection.parent
    coco = selection / "selection_coco.json" if selection.is_dir() else selection
    if not coco.is_file():
        raise FileNotFoundError(f"--selection {coco}: no such file (eglpp select writes it)")
    if not (folder / "summary.json").is_file():
        raise FileNotFoundError(
            f"--selection {folder}: no summary.json beside {coco.name} (eglpp select writes "
            "both): the selection's fingerprint is needed to find its tasks"
        )
    return coco, read_json(folder / "summary.json")


def _reasons(row: dict, strategy: str, total: int) -> tuple[list[dict], str]:
    """The neighbours of a ``selection.csv`` row and the reasons in words."""
    kind = "p" if "p_1" in row else "distance"
    prefix = "neighbour" if kind == "p" else "nearest"
    neighbours = []
    for k in range(1, 1000):
        if not row.get(f"{prefix}_{k}"):
            break
        neighbours.append({"image": row[f"{prefix}_{k}"], kind: float(row[f"{kind}_{k}"])})
    what = ("most probable labelled neighbours, p(j|i)" if kind == "p"
            else "nearest labelled images, distance")  # fmt: skip
    shown = ", ".join(f"{Path(n['image']).name} {n[kind]:.2f}" for n in neighbours)
    text = f"eglpp {strategy}: rank {row['rank']} of {total}, score {row['score']}"
    return neighbours, text + (f"; {what}: {shown}" if neighbours else "")


def _tasks_of(client: LabelStudio, project: int, fingerprint: str) -> list[dict]:
    return [t for t in client.tasks(project)
            if (t.get("data") or {}).get("eglpp_selection") == fingerprint]  # fmt: skip


def push_selection(client: LabelStudio, project: int, selection: str | Path,
                   log: Log = print) -> dict:  # fmt: skip
    """Make the tasks of an ``eglpp select`` folder in ``project`` (see the module
    docstring); returns ``{"created", "existing", "tasks": {file_name: task id}, …}``."""
    coco_path, summary = _selection_files(Path(selection))
    sel = read_coco(coco_path, require_keypoints=False)
    names = project_joints(client.project(project), sel.skeleton, coco_path)
    fp = selection_fingerprint(summary)
    with open(coco_path.parent / "selection.csv", newline="") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    checkpoint = Path(sel.info.get("checkpoint", ""))
    version = file_digest(checkpoint)[:12] if checkpoint.is_file() else "unknown"
    done = {t["data"].get("eglpp_image"): t["id"] for t in _tasks_of(client, project, fp)}
    todo = [im for im in sel.images if im["file_name"] not in done]
    pre = {a["image_id"]: a for a in sel.annotations}
    created = {}
    for start in range(0, len(todo), _BATCH):
        tasks = []
        for im in todo[start : start + _BATCH]:
            url = client.upload(project, Path(im["eglpp_path"]))
            tasks.append(_task(im, pre[im["id"]], rows[im["file_name"]], url, fp, version,
                               summary, names, sel))  # fmt: skip
        ids = client.import_tasks(project, tasks)
        created.update(zip((t["data"]["eglpp_image"] for t in tasks), ids, strict=False))
        log(f"label studio: {len(created)} of {len(todo)} tasks made in project {project}")
    if any((np.reshape(a["keypoints"], (-1, 3))[:, 2] > 0).any() for a in pre.values()):
        client.set_model_version(project, version)  # this round's predictions are shown
    return {
        "url": client.url, "project": int(project), "selection_fingerprint": fp,
        "model_version": version, "created": len(created), "existing": len(done),
        "tasks": {**done, **created},
    }  # fmt: skip


def _task(im, ann, row, url, fp, version, summary, names, sel) -> dict:
    """One task: the image, eglpp's reasons and the model's prediction."""
    J = sel.skeleton.n_joints
    neighbours, reasons = _reasons(row, summary["strategy"], len(sel.images))
    data = {"image": url, "eglpp_image": im["file_name"], "eglpp_selection": fp,
            "eglpp_rank": int(row["rank"]), "eglpp_score": float(row["score"]),
            "eglpp_strategy": summary["strategy"], "eglpp_neighbours": neighbours,
            "eglpp_reasons": reasons}  # fmt: skip
    kp = np.zeros((J, 3))
    kp[sel.order] = np.asarray(ann["keypoints"], np.float64).reshape(J, 3)
    task: dict = {"data": data}
    if (kp[:, 2] > 0).any():  # --pre-annotate empty: no prediction to correct
        result = keypoint_result(kp[:, :2], kp[:, 2], (im["width"], im["height"]), names)
        score = prediction_score(int(row["rank"]), len(sel.images))
        task["predictions"] = [{"model_version": version, "score": score,
                                "result": result}]  # fmt: skip
    return task


def prediction_score(rank: int, n: int) -> float:
    """The ``score`` of the prediction of the task ranked ``rank`` (1 = eglpp's first choice)
    of ``n``: (rank − 1) / n, in [0, 1), lowest for the most wanted (module docstring).

    >>> [prediction_score(r, 4) for r in (1, 2, 3, 4)]
    [0.0, 0.25, 0.5, 0.75]
    """
    return (rank - 1) / n


def _newest(annotations: list[dict]) -> dict:
    """The annotation updated last (then the highest id): Label Studio's times are ISO 8601,
    with or without fractions of a second, so they are compared as times, not as text."""

    def when(a: dict) -> datetime:
        text = a.get("updated_at") or a.get("created_at") or ""
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            return datetime.min.replace(tzinfo=timezone.utc)
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    return max(annotations, key=lambda a: (when(a), a.get("id") or 0))


def pull_annotations(client: LabelStudio, project: int, selection: str | Path) -> dict:
    """The finished tasks of a selection as COCO (``"coco"``), and ``"open"``/``"cancelled"``:
    the tasks not imported, each ``{"task", "image"}``."""
    coco_path, summary = _selection_files(Path(selection))
    sel = read_coco(coco_path, require_keypoints=False)
    names = project_joints(client.project(project), sel.skeleton, coco_path)
    fp = selection_fingerprint(summary)
    tasks = _tasks_of(client, project, fp)
    if not tasks:
        raise LabelStudioError(
            f"--project {project}: no task of the selection {coco_path.parent} (fingerprint "
            f"{fp}) on {client.url}: make them with eglpp select … --label-studio"
        )
    sizes = {im["file_name"]: (im.get("width"), im.get("height")) for im in sel.images}
    J = sel.skeleton.n_joints
    images, annotations, open_, cancelled = [], [], [], []
    for task in sorted(tasks, key=lambda t: t["id"]):
        name = task["data"].get("eglpp_image")
        entry = {"task": task["id"], "image": name}
        done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not done:
            (cancelled if task.get("annotations") else open_).append(entry)
            continue
        ann = _newest(done)
        w, h = sizes.get(name, (None, None))
        where = f"--project {project}: task {task['id']} ({name})"
        kp = annotation_keypoints(ann, (w, h), names, J, where)
        images.append({"id": task["id"], "file_name": name, "eglpp_task": task["id"],
                       **({"width": w, "height": h} if w and h else {})})  # fmt: skip
        annotations.append(keypoint_entry(task["id"], task["id"], kp[:, :2], kp[:, 2], None,
                                          eglpp_annotation=ann.get("id")))  # fmt: skip
    info = {"description": f"Label Studio project {project} at {client.url}, selection {fp}"}
    return {"coco": coco_document(images, annotations, sel.skeleton, info), "open": open_,
            "cancelled": cancelled, "selection_fingerprint": fp}  # fmt: skip


def import_label_studio(
    client: LabelStudio,
    project: int,
    labelled: str | Path,
    selection: str | Path,
    out: str | Path,
    export: str | Path,
    **merge: object,
) -> tuple[dict, dict]:
    """Write the finished tasks as COCO to ``export`` and merge them into ``labelled`` as
    ``eglpp import`` merges a tool's export (``merge``: its keyword arguments), except that a
    task submitted unchanged is left out and listed (``"unchanged"``: still open) unless
    ``accept_unchanged``, and a task already merged into ``labelled`` is skipped and listed
    (``"already_merged"``); returns (the merge's counts, :func:`pull_annotations`' answer with
    those two lists)."""
    pulled = pull_annotations(client, project, selection)
    if not pulled["coco"]["images"]:
        shown = ", ".join(f"#{t['task']}" for t in (pulled["open"] + pulled["cancelled"])[:10])
        raise LabelStudioError(
            f"--project {project}: none of the {len(pulled['open']) + len(pulled['cancelled'])} "
            f"tasks of the selection is finished yet ({shown}): nothing to import"
        )
    atomic_write_json(export, pulled["coco"])
    report = merge_annotations(labelled, export, selection, out, skip_unchanged=True, **merge)
    task_of = {im["file_name"]: im["id"] for im in pulled["coco"]["images"]}
    unchanged = [{"task": task_of[n], "image": n} for n in report["skipped_unchanged"]]
    merged = [{"task": task_of[n], "image": n} for n in report["already_merged"]]
    pulled = {**pulled, "unchanged": unchanged, "already_merged": merged}
    return {**report, "open_tasks": pulled["open"], "cancelled_tasks": pulled["cancelled"],
            "unchanged_tasks": unchanged, "already_merged_tasks": merged,
            "label_studio_export": str(export)}, pulled  # fmt: skip
