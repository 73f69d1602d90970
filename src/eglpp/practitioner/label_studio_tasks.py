"""Label Studio projects, tasks and annotations for ``eglpp select/import --label-studio``.

The labelling config (:func:`label_config`) is one ``KeyPointLabels`` on an ``Image``, one label
per joint in eglpp's joint names, and a ``Header`` showing why eglpp chose the image. Label
Studio gives keypoints in percent of the image (x = 0 the left edge, 100 the right edge), so a
joint at pixel index u is at x = 100 (u + 0.5) / width.

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
``selection_coco.json``, ``model_version`` the checkpoint's fingerprint (the first 12 hex digits
of its SHA-256), ``score`` the strategy's score (no prediction with ``--pre-annotate empty``).
An interruption between an upload and its task import leaves an unused upload on the server,
never a task without its data. A task already in the project for this
selection and image is never made again: a rerun makes only the missing tasks (an interrupted
upload resumes).

:func:`pull_annotations` reads the tasks of one selection (by fingerprint) and returns the
finished ones as a COCO keypoints document (image and annotation ids are the task ids) that
``eglpp import`` then merges through the same validation as a tool's COCO export
(:func:`eglpp.practitioner.merge.merge_annotations`); tasks without a submitted annotation are
listed as open, not imported. The newest submitted annotation of a task counts; a joint not
clicked is not labelled (v = 0), a clicked one is visible (v = 2).
"""

from __future__ import annotations

import csv
import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from eglpp.io import atomic_write_json, read_json
from eglpp.pose.skeleton import BUILT_IN, Skeleton
from eglpp.practitioner.chunks import file_digest
from eglpp.practitioner.coco import coco_document, joint_of, keypoint_entry, read_coco
from eglpp.practitioner.label_studio import LabelStudio, LabelStudioError
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
]

SKELETONS = dict(BUILT_IN)  # lsp, mpii, coco17; any other: a COCO file's (cli)
_BATCH = 20  # images uploaded per task import: what an interruption can lose at most
_COLOURS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
            "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000",
            "#aaffc3", "#808000")  # fmt: skip

Log = Callable[[str], None]


def label_config(skeleton: Skeleton) -> str:
    """The labelling config XML of ``skeleton`` (see the module docstring)."""
    labels = "\n".join(
        f"    <Label value={quoteattr(name)} background={quoteattr(_COLOURS[j % 16])}/>"
        for j, name in enumerate(skeleton.joints)
    )
    return (
        "<View>\n"
        '  <Header value="$eglpp_reasons"/>\n'
        '  <KeyPointLabels name="joints" toName="image" strokeWidth="2">\n'
        f"{labels}\n"
        "  </KeyPointLabels>\n"
        '  <Image name="image" value="$image" zoom="true" zoomControl="true"/>\n'
        "</View>\n"
    )


@dataclass(frozen=True)
class ProjectJoints:
    """A project's keypoint control: its ``from_name``/``to_name`` and each label's joint."""

    from_name: str
    to_name: str
    joint: dict[str, int]  # label -> skeleton position (labels that are no joint: absent)
    label: dict[int, str]  # skeleton position -> the project's label for it


def project_joints(project: dict, skeleton: Skeleton) -> ProjectJoints:
    """The ``KeyPointLabels`` of ``project``'s labelling config, every joint of ``skeleton``
    one of its labels; else a :class:`LabelStudioError` naming the missing joints."""
    where = f"--project {project.get('id')} ({project.get('title', '')!r})"
    try:
        root = ET.fromstring(project.get("label_config") or "")
    except ET.ParseError as exc:
        raise LabelStudioError(f"{where}: its labelling config is not XML ({exc})") from None
    controls = [c for c in root.iter("KeyPointLabels")]
    if not controls:
        raise LabelStudioError(
            f"{where}: its labelling config has no KeyPointLabels; make the project with "
            "eglpp label-studio-config --create-project TITLE"
        )
    control = controls[0]
    joint, label = {}, {}
    for tag in control.iter("Label"):
        name = tag.get("value", "")
        j = joint_of(name, skeleton)
        if j is not None:
            joint[name] = j
            label.setdefault(j, name)
    missing = [n for j, n in enumerate(skeleton.joints) if j not in label]
    if missing:
        given = ", ".join(t.get("value", "") for t in control.iter("Label")) or "none"
        raise LabelStudioError(
            f"{where}: its labelling config lacks the {skeleton.name} joint(s) "
            f"{', '.join(missing)} (labels: {given}); "
            f"see eglpp label-studio-config --skeleton {skeleton.name}"
        )
    return ProjectJoints(control.get("name", ""), control.get("toName", ""), joint, label)


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


def keypoint_result(joints: np.ndarray, flags: np.ndarray, size: tuple[int, int],
                    names: ProjectJoints) -> list[dict]:  # fmt: skip
    """Label Studio ``keypointlabels`` results of the labelled joints (J, 2) px indices."""
    w, h = size
    return [
        {"id": f"j{j}", "from_name": names.from_name, "to_name": names.to_name,
         "type": "keypointlabels", "original_width": int(w), "original_height": int(h),
         "image_rotation": 0,
         "value": {"x": 100.0 * (float(joints[j, 0]) + 0.5) / w,
                   "y": 100.0 * (float(joints[j, 1]) + 0.5) / h,
                   "width": 1.0, "keypointlabels": [names.label[j]]}}
        for j in range(len(flags)) if flags[j] > 0
    ]  # fmt: skip


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
    names = project_joints(client.project(project), sel.skeleton)
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
        task["predictions"] = [{"model_version": version, "score": float(row["score"]),
                                "result": result}]  # fmt: skip
    return task


def _annotation_keypoints(ann: dict, task: dict, names: ProjectJoints, J: int,
                          where: str) -> np.ndarray:  # fmt: skip
    """(J, 3) keypoints (x, y px indices, v) of one Label Studio annotation."""
    kp = np.zeros((J, 3))
    for item in ann.get("result") or []:
        if item.get("type") != "keypointlabels" or item.get("from_name") != names.from_name:
            continue  # another control's result (a comment, a box): not a joint
        value = item.get("value") or {}
        labels = value.get("keypointlabels") or []
        label = labels[0] if labels else None
        if label not in names.joint:
            raise LabelStudioError(
                f"{where}: annotation {ann.get('id')} has a keypoint labelled {label!r}, which "
                f"is no joint of the project's skeleton (labels: {', '.join(names.joint)})"
            )
        j = names.joint[label]
        if kp[j, 2] > 0:
            raise LabelStudioError(
                f"{where}: annotation {ann.get('id')} places joint {label!r} twice"
            )
        w = item.get("original_width") or task["_width"]
        h = item.get("original_height") or task["_height"]
        kp[j] = (float(value["x"]) / 100 * w - 0.5, float(value["y"]) / 100 * h - 0.5, 2)
    return kp


def pull_annotations(client: LabelStudio, project: int, selection: str | Path) -> dict:
    """The finished tasks of a selection as COCO (``"coco"``), and ``"open"``/``"cancelled"``:
    the tasks not imported, each ``{"task", "image"}``."""
    coco_path, summary = _selection_files(Path(selection))
    sel = read_coco(coco_path, require_keypoints=False)
    names = project_joints(client.project(project), sel.skeleton)
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
        ann = max(done, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0))
        w, h = sizes.get(name, (None, None))
        where = f"--project {project}: task {task['id']} ({name})"
        kp = _annotation_keypoints(ann, {**task, "_width": w, "_height": h}, names, J, where)
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
    ``eglpp import`` merges a tool's export (``merge``: its keyword arguments); returns
    (the merge's counts, :func:`pull_annotations`' answer)."""
    pulled = pull_annotations(client, project, selection)
    if not pulled["coco"]["images"]:
        shown = ", ".join(f"#{t['task']}" for t in (pulled["open"] + pulled["cancelled"])[:10])
        raise LabelStudioError(
            f"--project {project}: none of the {len(pulled['open']) + len(pulled['cancelled'])} "
            f"tasks of the selection is finished yet ({shown}): nothing to import"
        )
    atomic_write_json(export, pulled["coco"])
    report = merge_annotations(labelled, export, selection, out, **merge)
    return {**report, "open_tasks": pulled["open"], "cancelled_tasks": pulled["cancelled"],
            "label_studio_export": str(export)}, pulled  # fmt: skip
