"""``eglpp import --label-studio``: of a task's submitted annotations, the newest is imported.

An annotator who corrects a task leaves it with two annotations (or one annotation updated
after another was made); the correction must be what lands in the merged labelled set. Label
Studio's answers are written by hand in its shapes (``id``, ``created_at``, ``updated_at``,
``result``), served by a minimal fake of the two calls an import makes.
"""

import json

import numpy as np
from conftest import SIZE, select_config, truth_keypoints

from eglpp.pose.skeleton import LSP
from eglpp.practitioner.coco import read_coco
from eglpp.practitioner.label_studio import LabelStudio
from eglpp.practitioner.label_studio_tasks import (
    import_label_studio,
    keypoint_result,
    label_config,
    project_joints,
    selection_fingerprint,
)
from eglpp.practitioner.run import run_select

URL = "http://ls.test:8080"
PROJECT = {"id": 3, "title": "people", "label_config": label_config(LSP)}


class _Reply:
    def __init__(self, body) -> None:
        self.status_code, self.text, self._body = 200, json.dumps(body), body

    def json(self):
        return self._body


class _Server:
    """Project 3 and its tasks: what ``pull_annotations`` reads."""

    def __init__(self, tasks: list[dict]) -> None:
        self.tasks = tasks

    def request(self, method, url, headers=None, timeout=None, **kwargs):
        path = url.removeprefix(URL)
        if (method, path) == ("GET", "/api/projects/3"):
            return _Reply(PROJECT)
        assert (method, path) == ("GET", "/api/tasks"), (method, path)
        return _Reply({"total": len(self.tasks), "tasks": self.tasks})


def _annotation(ann_id: int, created: str, updated: str, kp: np.ndarray) -> dict:
    names = project_joints(PROJECT, LSP)
    return {"id": ann_id, "created_at": created, "updated_at": updated, "was_cancelled": False,
            "result": keypoint_result(kp[:, :2], kp[:, 2], (SIZE, SIZE), names)}  # fmt: skip


def _task(task_id: int, image: str, fp: str, annotations: list[dict]) -> dict:
    return {"id": task_id, "data": {"eglpp_image": image, "eglpp_selection": fp},
            "annotations": annotations}  # fmt: skip


def _truth(world, name: str) -> np.ndarray:
    """(14, 3) keypoints of pool image ``name`` from the renderer's ground truth."""
    i = world["pool_names"].index(name)
    return np.asarray(truth_keypoints(world["pool_data"], i)).reshape(14, 3)


def _moved(kp: np.ndarray, dx: float) -> np.ndarray:
    """``kp`` with every labelled joint moved ``dx`` px right (kept inside the image)."""
    out = kp.copy()
    out[:, 0] = np.clip(out[:, 0] + dx, 0, SIZE - 1)
    return out


def test_the_newest_submitted_annotation_of_a_task_is_imported(world, tmp_path):
    sel = tmp_path / "sel"
    config = select_config(budget=2, strategy="random", input_size=SIZE, chunk_size=16)
    run_select(world["checkpoint"], world["labelled"], world["pool"], sel, config,
               progress=False, log=lambda m: None)  # fmt: skip
    fp = selection_fingerprint(json.loads((sel / "summary.json").read_text()))
    chosen = [im["file_name"] for im in read_coco(sel / "selection_coco.json").images]
    first, second = chosen
    a, b = (_truth(world, n) for n in chosen)
    day = "2026-03-0{}T10:00:00.000000Z".format
    tasks = [  # newest listed first; either order of the list is tried below
        # annotated (70), then annotated again (75): 75 is the newest
        _task(1, first, fp, [_annotation(75, day(2), day(2), a),
                             _annotation(70, day(1), day(1), _moved(a, 4))]),
        # 71, then 76, then 71 updated: 71 is the newest, with the smaller id
        _task(2, second, fp, [_annotation(71, day(1), day(3), b),
                              _annotation(76, day(2), day(2), _moved(b, -4))]),
    ]  # fmt: skip
    for order in (lambda anns: anns, lambda anns: anns[::-1]):  # either order of the list
        listed = [{**t, "annotations": order(t["annotations"])} for t in tasks]
        studio = LabelStudio(URL, "legacy-token-123", session=_Server(listed))
        out = tmp_path / "merged.json"
        report, pulled = import_label_studio(studio, 3, world["labelled"], sel, out,
                                             tmp_path / "merged.label-studio.json")  # fmt: skip
        assert report["added_images"] == 2
        people = _by_image(json.loads(out.read_text()), "keypoints")
        for name, kp in ((first, a), (second, b)):
            (got,) = [people[f] for f in people if f.endswith(name)]
            np.testing.assert_allclose(np.reshape(got, (14, 3)), np.where(kp[:, 2:] > 0, kp, 0),
                                       atol=0.01, err_msg=name)  # fmt: skip
        assert _by_image(pulled["coco"], "eglpp_annotation") == {first: 75, second: 71}


def _by_image(coco: dict, field: str) -> dict:
    """``field`` of each annotation of a COCO document, by its image's file name."""
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    return {files[x["image_id"]]: x[field] for x in coco["annotations"]}
