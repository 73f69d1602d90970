"""``eglpp import --label-studio`` against a fake server (issue 21, items 6 and 11; issue 28, 4).

Occluded joints keep v = 1 through the round trip; the newest submitted annotation of a task
counts; a task submitted unchanged is left open while the others are imported; an import into
the file the previous import wrote skips what that one merged; the prediction's score puts
Label Studio's orderings (lowest score first) in eglpp's order.
"""

import json

import numpy as np
import pytest
from conftest import SIZE, select_config, truth_keypoints
from test_label_studio_client import PROJECT, FakeProject, client

from eglpp.pose.datasets.base import AnnotationError
from eglpp.pose.skeleton import LSP
from eglpp.practitioner.label_studio_config import (
    annotation_keypoints,
    keypoint_result,
    label_config,
    project_joints,
)
from eglpp.practitioner.label_studio_tasks import import_label_studio, push_selection
from eglpp.practitioner.run import run_select

NAMES = project_joints(PROJECT, LSP)


@pytest.fixture
def pushed(world, tmp_path):
    """A random selection of 3 pushed to a fake project: (the fake project, its client)."""
    config = select_config(budget=3, strategy="random", input_size=SIZE, chunk_size=16)
    run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "sel", config,
               progress=False, log=lambda m: None)  # fmt: skip
    fake = FakeProject()
    studio = client(fake.routes)
    push_selection(studio, 3, tmp_path / "sel", log=lambda m: None)
    return fake, studio


def _truth(world, task) -> np.ndarray:
    i = world["pool_names"].index(task["data"]["eglpp_image"])
    return np.asarray(truth_keypoints(world["pool_data"], i)).reshape(14, 3)


def _answer(kp: np.ndarray, ann_id: int, updated_at: str = "2026-01-01T10:00:00Z") -> dict:
    result = keypoint_result(kp[:, :2], kp[:, 2], (SIZE, SIZE), NAMES)
    return {"id": ann_id, "result": result, "updated_at": updated_at}


def _import(world, tmp_path, studio, labelled=None, out="m.json", **merge):
    out = tmp_path / out
    return import_label_studio(studio, 3, labelled or world["labelled"], tmp_path / "sel", out,
                               out.with_suffix(".ls.json"), **merge)  # fmt: skip


def _merged_people(path) -> np.ndarray:
    return np.stack([np.reshape(a["keypoints"], (14, 3)) for a in json.loads(path.read_text())
                     ["annotations"]])  # fmt: skip


def test_occluded_joints_keep_v1_through_the_round_trip():
    kp = np.zeros((14, 3))
    kp[:, :2] = np.arange(28).reshape(14, 2)
    kp[:, 2] = [2, 1, 0, 2, 1, 1, 2, 2, 0, 1, 2, 2, 1, 2]
    assert 'perRegion="true"' in label_config(LSP) and NAMES.visibility == "visibility"
    result = keypoint_result(kp[:, :2], kp[:, 2], (SIZE, SIZE), NAMES)
    ticked = [r for r in result if r["type"] == "choices"]
    assert [r["value"]["choices"] for r in ticked] == [["occluded"]] * 5
    points = {r["id"] for r in result if r["type"] == "keypointlabels"}
    assert {r["id"] for r in ticked} <= points  # the tick is the joint's region's
    back = annotation_keypoints({"id": 1, "result": result}, (SIZE, SIZE), NAMES, 14, "t")
    np.testing.assert_array_equal(back[:, 2], kp[:, 2])
    np.testing.assert_allclose(back[kp[:, 2] > 0, :2], kp[kp[:, 2] > 0, :2], atol=1e-9)
    # a project made without the control: every clicked joint comes back visible
    old = project_joints({"id": 2, "label_config": label_config(LSP).replace(
        'perRegion="true"', "")}, LSP)  # fmt: skip
    assert old.visibility is None
    back = annotation_keypoints({"id": 1, "result": result}, (SIZE, SIZE), old, 14, "t")
    np.testing.assert_array_equal(back[:, 2], np.where(kp[:, 2] > 0, 2, 0))


def test_the_newest_submitted_annotation_wins(world, tmp_path, pushed):
    """Two annotations on one task: the one updated last counts, though its id is lower and
    its time sorts first as text ("…:00.5Z" is after "…:00Z")."""
    fake, studio = pushed
    first = fake.tasks[0]
    truth = _truth(world, first)
    corrected = truth.copy()
    corrected[:, :2] += np.where(corrected[:, 2:] > 0, 1.0, 0.0)
    first["annotations"] = [_answer(corrected, 80, "2026-01-01T10:00:00.500000Z"),
                            _answer(truth, 81, "2026-01-01T10:00:00Z")]  # fmt: skip
    report, _ = _import(world, tmp_path, studio)
    assert report["added_people"] == 1
    np.testing.assert_allclose(_merged_people(tmp_path / "m.json")[-1], corrected, atol=0.01)


def test_an_unchanged_task_stays_open_and_the_others_are_imported(world, tmp_path, pushed):
    fake, studio = pushed
    first, second, _ = fake.tasks
    first["annotations"] = [{"id": 70, "result": first["predictions"][0]["result"]}]
    second["annotations"] = [_answer(_truth(world, second), 71)]
    report, pulled = _import(world, tmp_path, studio)
    assert (report["added_images"], report["added_people"]) == (1, 1)
    assert pulled["unchanged"] == [{"task": 1, "image": first["data"]["eglpp_image"]}]
    assert pulled["open"] == [{"task": 3, "image": fake.tasks[2]["data"]["eglpp_image"]}]
    np.testing.assert_allclose(_merged_people(tmp_path / "m.json")[-1],
                               _truth(world, second), atol=0.01)  # fmt: skip
    report, pulled = _import(world, tmp_path, studio, out="m2.json", accept_unchanged=True)
    assert report["added_people"] == 2 and pulled["unchanged"] == []


def test_an_import_into_the_merged_file_skips_what_it_merged(world, tmp_path, pushed):
    fake, studio = pushed
    first, second, _ = fake.tasks
    first["annotations"] = [_answer(_truth(world, first), 70)]
    _import(world, tmp_path, studio, out="m1.json")
    second["annotations"] = [_answer(_truth(world, second), 71)]
    report, pulled = _import(world, tmp_path, studio, labelled=tmp_path / "m1.json", out="m2.json")
    assert report["added_people"] == 1 and report["labelled_images"] == 17
    assert pulled["already_merged"] == [{"task": 1, "image": first["data"]["eglpp_image"]}]
    assert len(_merged_people(tmp_path / "m2.json")) == 18
    moved = _truth(world, first)
    moved[0, 0] += 3  # edited in the tool after it was merged: never replaces the label
    first["annotations"].append(_answer(moved, 72, "2026-01-02T10:00:00Z"))
    with pytest.raises(AnnotationError, match=r"already in the labelled set .*m1\.json with "
                       r"other keypoints: eglpp never replaces a label"):  # fmt: skip
        _import(world, tmp_path, studio, labelled=tmp_path / "m1.json", out="m3.json")


def test_the_prediction_score_orders_tasks_as_eglpp_does(pushed):
    """Label Studio serves (uncertainty sampling) and sorts the lowest score first."""
    fake, _ = pushed
    assert fake.model_version == fake.tasks[0]["predictions"][0]["model_version"]  # shown
    scores = [t["predictions"][0]["score"] for t in fake.tasks]
    ranks = [t["data"]["eglpp_rank"] for t in fake.tasks]
    assert scores == [(r - 1) / 3 for r in ranks]
    by_score = sorted(fake.tasks, key=lambda t: t["predictions"][0]["score"])
    assert [t["data"]["eglpp_rank"] for t in by_score] == [1, 2, 3]
    eglpp_scores = [t["data"]["eglpp_score"] for t in by_score]
    assert eglpp_scores == sorted(eglpp_scores, reverse=True)  # higher eglpp score: served first


def test_without_predictions_the_model_version_is_left_alone(world, tmp_path):
    """--pre-annotate empty: no prediction, so no score and no model version to set (Label
    Studio refuses a version no prediction has)."""
    config = select_config(budget=2, strategy="random", input_size=SIZE, chunk_size=16,
                           pre_annotate="empty")  # fmt: skip
    run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "sel", config,
               progress=False, log=lambda m: None)  # fmt: skip
    fake = FakeProject()
    assert push_selection(client(fake.routes), 3, tmp_path / "sel", log=lambda m: None)[
        "created"] == 2  # fmt: skip
    assert all("predictions" not in t for t in fake.tasks) and fake.model_version == ""
