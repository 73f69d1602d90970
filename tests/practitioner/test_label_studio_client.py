"""The Label Studio client and converter without a server: a fake HTTP layer.

The real-server round trip is tests/practitioner/test_label_studio_server.py; here the bad
input, the token kinds, the paging and the percent ↔ pixel conversion, each against answers
written by hand in Label Studio's shapes.
"""

import json
import socket

import numpy as np
import pytest
from conftest import SIZE, select_config, truth_keypoints
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.skeleton import LSP, MPII
from eglpp.practitioner.label_studio import LabelStudio, LabelStudioError, connect
from eglpp.practitioner.label_studio_config import annotation_keypoints
from eglpp.practitioner.label_studio_tasks import (
    ProjectJoints,
    import_label_studio,
    keypoint_result,
    label_config,
    project_joints,
    push_selection,
    selection_fingerprint,
)
from eglpp.practitioner.run import run_select

URL = "http://ls.test:8080"


class Answer:
    def __init__(self, status, body=None):
        self.status_code = status
        self.text = "" if body is None else json.dumps(body)
        self._body = body

    def json(self):
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


class FakeServer:
    """Routes ``request(method, url, ...)`` to ``routes[(method, path)]`` (a status and body,
    or a function of the keyword arguments); records every call."""

    def __init__(self, routes, token="legacy-token-123"):
        self.routes, self.token, self.calls = routes, token, []

    def request(self, method, url, headers=None, timeout=None, **kwargs):
        path = url.removeprefix(URL)
        self.calls.append((method, path, headers.get("Authorization"), kwargs))
        known = (f"Token {self.token}", "Bearer access-1", "Bearer access-2")
        if headers.get("Authorization") not in known and path != "/api/token/refresh/":
            return Answer(401, {"detail": "Invalid token."})
        route = self.routes.get((method, path))
        if route is None:
            return Answer(404, {"detail": "Not found."})
        status, body = route(**kwargs) if callable(route) else route
        return Answer(status, body)


def client(routes, token="legacy-token-123", server_token="legacy-token-123"):
    return LabelStudio(URL, token, session=FakeServer(routes, server_token))


PROJECT = {"id": 3, "title": "people", "label_config": label_config(LSP)}


def test_unreachable_server_is_one_line():
    with socket.socket() as s:  # a real request to a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(LabelStudioError, match=rf"^--label-studio {closed}: server unreachable"):
        LabelStudio(closed, "t0k3n-abc").project(1)


def test_wrong_token_unknown_project_and_missing_token():
    with pytest.raises(LabelStudioError) as info:
        client({}, token="wrong-token").project(3)
    assert "refused the API token in LABEL_STUDIO_API_KEY (HTTP 401: Invalid token.)" in str(
        info.value
    )
    with pytest.raises(LabelStudioError, match=r"^--project 7: not found on http://ls.test:8080$"):
        client({}).project(7)
    with pytest.raises(LabelStudioError, match="set the API token in the environment variable "
                       "LABEL_STUDIO_API_KEY"):  # fmt: skip
        connect(URL, environ={})
    with pytest.raises(LabelStudioError, match="expected the server's address"):
        LabelStudio("localhost:8080", "token")


def test_a_personal_access_token_is_exchanged_and_renewed():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"
    refreshes = []

    def refresh(json):
        assert json == {"refresh": jwt}
        refreshes.append(1)
        return 200, {"access": f"access-{len(refreshes)}"}

    answers = iter([(401, {"detail": "expired"}), (200, PROJECT)])
    fake = FakeServer({("POST", "/api/token/refresh/"): refresh,
                       ("GET", "/api/projects/3"): lambda: next(answers)})  # fmt: skip
    assert LabelStudio(URL, jwt, session=fake).project(3) == PROJECT
    assert [c[2] for c in fake.calls] == [None, "Bearer access-1", None, "Bearer access-2"]


def test_config_labels_are_the_skeleton_joints():
    for skeleton in (LSP, MPII):
        names = project_joints({"id": 1, "label_config": label_config(skeleton)}, skeleton)
        assert names.label == dict(enumerate(skeleton.joints))
        assert (names.from_name, names.to_name) == ("joints", "image")
    spelled = PROJECT["label_config"].replace('"left_wrist"', '"Left Wrist"')
    names = project_joints({"id": 1, "label_config": spelled}, LSP)  # matched as COCO names are
    assert names.label[11] == "Left Wrist" and names.joint["Left Wrist"] == 11
    lacking = PROJECT["label_config"].replace('"neck"', '"nose"').replace('"head_top"', '"ear"')
    with pytest.raises(LabelStudioError) as info:
        project_joints({"id": 4, "title": "p", "label_config": lacking}, LSP)
    assert str(info.value).startswith(
        "--project 4 ('p'): its labelling config lacks the lsp joint(s) neck, head_top (labels: "
    )
    with pytest.raises(LabelStudioError, match="has no KeyPointLabels"):
        project_joints({"id": 4, "label_config": "<View><Image name='i' value='$i'/></View>"}, LSP)
    with pytest.raises(LabelStudioError, match="not XML"):
        project_joints({"id": 4, "label_config": "<View>"}, LSP)


def test_percent_of_the_image_and_back():
    names = ProjectJoints("joints", "image", {n: j for j, n in enumerate(LSP.joints)},
                          dict(enumerate(LSP.joints)))  # fmt: skip
    joints = np.zeros((14, 2))
    joints[0] = (0.0, 0.0)  # the centre of the top-left pixel
    joints[5] = (31.0, 15.5)  # the centre of the last column, between rows 15 and 16
    flags = np.zeros(14, int)
    flags[[0, 5]] = 2
    result = keypoint_result(joints, flags, (32, 64), names)
    assert [r["value"]["keypointlabels"] for r in result] == [["right_ankle"], ["left_ankle"]]
    assert (result[0]["value"]["x"], result[0]["value"]["y"]) == (100 * 0.5 / 32, 100 * 0.5 / 64)
    assert (result[1]["value"]["x"], result[1]["value"]["y"]) == (100 * 31.5 / 32, 100 * 16 / 64)
    kp = annotation_keypoints({"id": 9, "result": result}, (32, 64), names, 14, "task 1")
    np.testing.assert_allclose(kp[[0, 5]], [[0, 0, 2], [31, 15.5, 2]], atol=1e-12)
    assert not kp[[1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13]].any()  # not clicked: v = 0
    bad = json.loads(json.dumps(result))
    bad[1]["value"]["keypointlabels"] = ["tail"]
    with pytest.raises(LabelStudioError, match=r"^task 1: annotation 9 has a keypoint labelled "
                       r"'tail', which is no joint"):  # fmt: skip
        annotation_keypoints({"id": 9, "result": bad}, (32, 64), names, 14, "task 1")
    with pytest.raises(LabelStudioError, match="places joint 'right_ankle' twice"):
        annotation_keypoints({"id": 9, "result": [result[0], result[0]]}, (32, 64), names, 14, "t")


def test_tasks_come_page_by_page():
    pages = {p: [{"id": 100 * p + k} for k in range(100 if p < 3 else 17)] for p in (1, 2, 3)}

    def tasks(params):
        assert params["project"] == 3 and params["fields"] == "all"
        return 200, {"total": 217, "tasks": pages[params["page"]]}

    ids = [t["id"] for t in client({("GET", "/api/tasks"): tasks}).tasks(3)]
    assert len(ids) == 217 and len(set(ids)) == 217


def test_the_selection_fingerprint_is_the_selection():
    a = selection_fingerprint({"fingerprint": "abc", "selected": ["x.jpg", "y.jpg"]})
    assert a == selection_fingerprint({"fingerprint": "abc", "selected": ["x.jpg", "y.jpg"]})
    assert a != selection_fingerprint({"fingerprint": "abc", "selected": ["y.jpg", "x.jpg"]})
    assert a != selection_fingerprint({"fingerprint": "abd", "selected": ["x.jpg", "y.jpg"]})


@pytest.mark.parametrize(
    "args, message",
    [
        (["select", "--label-studio", URL], "--label-studio: needs --project ID too"),
        (["import", "--annotations", "a.json", "--project", "3"],
         "--project: needs --label-studio URL too"),
        (["import", "--annotations", "a.json", "--label-studio", URL, "--project", "3"],
         "eglpp import: give --annotations FILE or --label-studio URL, one"),
        (["label-studio-config", "--create-project", "people"],
         "--create-project: needs --label-studio URL (the server)"),
    ],
)  # fmt: skip
def test_flags_go_together(tmp_path, args, message):
    rest = {"select": ["--checkpoint", "m.pt", "--labelled", "l.json", "--pool", "p", "--budget",
                       "2", "--out", str(tmp_path / "o")],
            "import": ["--labelled", "l.json", "--selection", "s", "--out",
                       str(tmp_path / "m.json")]}.get(args[0], [])  # fmt: skip
    result = CliRunner().invoke(app, args + rest)
    assert result.exit_code != 0 and str(result.exception) == message, result.output


class FakeProject:
    """A stateful project 3 in Label Studio's shapes: uploads, task import, task listing."""

    def __init__(self):
        self.tasks, self.uploads, self.model_version = [], [], ""
        self.routes = {
            ("GET", "/api/projects/3"): (200, PROJECT),
            ("PATCH", "/api/projects/3"): self._patch,
            ("GET", "/api/tasks"): lambda params: (
                200,
                {"total": len(self.tasks), "tasks": self.tasks},
            ),  # fmt: skip
            ("POST", "/api/projects/3/import"): self._import,
            ("GET", "/api/projects/3/file-uploads"): lambda params: (
                200,
                [
                    {"id": i, "file": f"upload/3/{self.uploads[i - 1]}"}
                    for i in json.loads(params["ids"])
                ],
            ),  # fmt: skip
        }

    def _patch(self, json):
        """Label Studio takes a model version that some prediction of the project has."""
        versions = {p["model_version"] for t in self.tasks for p in t.get("predictions", [])}
        if json["model_version"] not in versions:
            return 400, {"validation_errors": {"model_version": ["Model version doesn't exist"]}}
        self.model_version = json["model_version"]
        return 200, {**PROJECT, "model_version": self.model_version}

    def _import(self, params, files=None, json=None):
        if files:
            self.uploads += [name for name in files]
            return 201, {"file_upload_ids": [len(self.uploads)]}
        ids = list(range(len(self.tasks) + 1, len(self.tasks) + 1 + len(json)))
        self.tasks += [{**t, "id": i, "annotations": []} for t, i in zip(json, ids, strict=True)]
        return 201, {"task_ids": ids}


def _merge(world, tmp_path, studio):
    out = tmp_path / "merged.json"
    return import_label_studio(studio, 3, world["labelled"], tmp_path / "sel", out,
                               tmp_path / "merged.label-studio.json")  # fmt: skip


def test_select_and_import_through_a_fake_server(world, tmp_path):
    """push → tasks (none twice) → annotations → import: open and skipped tasks reported; the
    COCO path's checks refuse an image twice, an image outside the selection, no joints."""
    config = select_config(budget=3, strategy="random", input_size=SIZE, chunk_size=16)
    run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "sel", config,
               progress=False, log=lambda m: None)  # fmt: skip
    fake = FakeProject()
    studio = client(fake.routes)
    assert push_selection(studio, 3, tmp_path / "sel", log=lambda m: None)["created"] == 3
    assert push_selection(studio, 3, tmp_path / "sel", log=lambda m: None)["created"] == 0
    assert len(fake.tasks) == 3 and len(fake.uploads) == 3
    assert fake.tasks[0]["data"]["image"] == f"/data/upload/3/{fake.uploads[0]}"
    names = project_joints(PROJECT, LSP)
    first, second, third = fake.tasks
    i = world["pool_names"].index(first["data"]["eglpp_image"])
    kp = np.asarray(truth_keypoints(world["pool_data"], i)).reshape(14, 3)
    answer = {"id": 70, "result": keypoint_result(kp[:, :2], kp[:, 2], (SIZE, SIZE), names)}
    first["annotations"] = [answer]
    third["annotations"] = [{"id": 71, "was_cancelled": True, "result": []}]
    report, pulled = _merge(world, tmp_path, studio)
    assert (report["added_images"], report["added_people"]) == (1, 1)
    assert pulled["open"] == [{"task": 2, "image": second["data"]["eglpp_image"]}]
    assert pulled["cancelled"] == [{"task": 3, "image": third["data"]["eglpp_image"]}]
    merged = json.loads((tmp_path / "merged.json").read_text())
    np.testing.assert_allclose(np.reshape(merged["annotations"][-1]["keypoints"], (14, 3)),
                               np.where(kp[:, 2:] > 0, kp, 0), atol=0.01)  # fmt: skip

    fake.tasks.append({**first, "id": 4})  # the same image twice
    with pytest.raises(ValueError, match=r"are the same selected image"):
        _merge(world, tmp_path, studio)
    fake.tasks[3] = {**first, "id": 4, "data": {**first["data"], "eglpp_image": "elsewhere.jpg"}}
    with pytest.raises(ValueError, match=r"'elsewhere.jpg' is not in the selection"):
        _merge(world, tmp_path, studio)
    del fake.tasks[3]
    second["annotations"] = [{"id": 72, "result": []}]  # submitted without a joint
    with pytest.raises(ValueError, match=r"missing keypoints: no joint is labelled .* image 2;"):
        _merge(world, tmp_path, studio)
