"""The annotation round trip through a real Label Studio server.

label-studio-config --create-project → select --label-studio (tasks with predictions, checked
through the API; an interrupted upload resumed, a rerun making no duplicate) → a simulated
annotator submitting through the API (the renderer's truth with joints moved, one task left
open) → import --label-studio (the open task reported, the others merged) → retrain → the next
select excludes them. Then the bad input against the same server.

``.ci/label_studio.sh start ENV_FILE`` starts a server in its own virtual environment and
writes ``EGLPP_LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` to ENV_FILE: set them (``set -a;
. ENV_FILE``), or set ``EGLPP_LABEL_STUDIO_ENV_FILE=ENV_FILE`` to wait for a server still
starting (``.ci/run`` does, and runs these tests last: tests/practitioner/conftest.py). Without
either the tests skip, except where ``EGLPP_REQUIRE_LABEL_STUDIO=1`` (set by ``.ci/run``).
"""

import csv
import hashlib
import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import SIZE, train_tiny, truth_keypoints
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.skeleton import LSP, MPII
from eglpp.practitioner import label_studio_tasks
from eglpp.practitioner.coco import coco_to_annotations, read_coco
from eglpp.practitioner.label_studio import LabelStudio, LabelStudioError
from eglpp.practitioner.label_studio_tasks import (
    keypoint_result,
    label_config,
    project_joints,
)

URL = os.environ.get("EGLPP_LABEL_STUDIO_URL")
TOKEN = os.environ.get("LABEL_STUDIO_API_KEY")
ENV_FILE = os.environ.get("EGLPP_LABEL_STUDIO_ENV_FILE")  # .ci/run: the server still starting
REQUIRED = os.environ.get("EGLPP_REQUIRE_LABEL_STUDIO") == "1"  # set by .ci/run: never skip
if REQUIRED and not (URL and TOKEN or ENV_FILE):
    raise RuntimeError(
        "EGLPP_REQUIRE_LABEL_STUDIO=1 but neither EGLPP_LABEL_STUDIO_URL and "
        "LABEL_STUDIO_API_KEY nor EGLPP_LABEL_STUDIO_ENV_FILE is set (.ci/label_studio.sh start "
        "ENV_FILE writes them)"
    )
pytestmark = pytest.mark.skipif(
    not (URL and TOKEN or ENV_FILE),
    reason="no Label Studio server: set EGLPP_LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY "
    "(.ci/label_studio.sh start ENV_FILE starts one and writes them there)",
)
WAIT_S = 600  # for a server that .ci/run is still installing and starting


@pytest.fixture(scope="module", autouse=True)
def server():
    """The server's URL and token (the variables, or ENV_FILE once the server answers); the
    token goes to LABEL_STUDIO_API_KEY, where eglpp reads it."""
    global URL, TOKEN
    if not (URL and TOKEN):
        start, found = time.monotonic(), {}
        while "EGLPP_LABEL_STUDIO_URL" not in found:
            text = Path(ENV_FILE).read_text() if Path(ENV_FILE).is_file() else ""
            found = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
            if "EGLPP_LABEL_STUDIO_FAILED" in found or time.monotonic() - start > WAIT_S:
                pytest.fail(f"the Label Studio server of {ENV_FILE} did not start: "
                            f"{found.get('EGLPP_LABEL_STUDIO_FAILED', 'timeout')} (its log: "
                            "the output of .ci/label_studio.sh start)")  # fmt: skip
            time.sleep(1)
        print(f"waited {time.monotonic() - start:.0f} s for Label Studio")
        URL, TOKEN = found["EGLPP_LABEL_STUDIO_URL"], found["LABEL_STUDIO_API_KEY"]
    saved = os.environ.get("LABEL_STUDIO_API_KEY")
    os.environ["LABEL_STUDIO_API_KEY"] = TOKEN
    yield URL, TOKEN
    if saved is None:
        del os.environ["LABEL_STUDIO_API_KEY"]
    else:
        os.environ["LABEL_STUDIO_API_KEY"] = saved


EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2"]
NAMES = project_joints({"label_config": label_config(LSP)}, LSP)  # with the occluded tick
MOVED = {3: (1.5, -1.0), 12: (-2.0, 0.5)}  # joint -> (dx, dy) px: the annotator's corrections


def cli(*args, ok=True):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result) -> str:
    """The error of a failed command as ``eglpp`` prints it (``main()``'s one line)."""
    assert result.exit_code != 0 and isinstance(result.exception, ValueError), result.output
    message = str(result.exception)
    assert "\n" not in message, message
    return message


def select(world, labelled, checkpoint, out, *extra):
    cli("select", "--checkpoint", checkpoint, "--labelled", labelled, "--pool", world["pool"],
        "--budget", 6, "--out", out, "--input-size", SIZE, "--chunk-size", 16, "--no-progress",
        *EGL, *extra)  # fmt: skip
    with open(out / "selection.csv") as f:
        return list(csv.DictReader(f))


def new_project(config: str | None = None) -> int:
    title = f"eglpp test {uuid.uuid4().hex[:8]}"
    if config is None:
        out = cli("label-studio-config", "--skeleton", "lsp", "--create-project", title,
                  "--label-studio", URL).output  # fmt: skip
        return int(re.search(r"created project (\d+)", out).group(1))
    return LabelStudio(URL, TOKEN).create_project(title, config)["id"]


def tasks_of(project: int) -> list[dict]:
    return sorted(LabelStudio(URL, TOKEN).tasks(project), key=lambda t: t["data"]["eglpp_rank"])


def truth_result(world, image: str, moved=MOVED) -> tuple[list[dict], np.ndarray]:
    """The annotator's answer for a pool image: its true joints, ``moved`` ones shifted."""
    kp = np.asarray(truth_keypoints(world["pool_data"], world["pool_names"].index(image)))
    kp = kp.reshape(LSP.n_joints, 3)
    for j, (dx, dy) in moved.items():
        kp[j, :2] += (dx, dy) if kp[j, 2] > 0 else (0, 0)
    return keypoint_result(kp[:, :2], kp[:, 2], (SIZE, SIZE), NAMES), kp


def test_round_trip(world, tmp_path, monkeypatch):
    project = new_project()
    sel1 = tmp_path / "sel1"
    # an upload interrupted after the first batch of 2 tasks ...
    monkeypatch.setattr(label_studio_tasks, "_BATCH", 2)
    calls = []
    real_import = LabelStudio.import_tasks

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise LabelStudioError("connection lost (planted)")
        return real_import(self, *args)

    monkeypatch.setattr(LabelStudio, "import_tasks", interrupted)
    result = cli("select", "--checkpoint", world["checkpoint"], "--labelled", world["labelled"],
                 "--pool", world["pool"], "--budget", 6, "--out", sel1, "--input-size", SIZE,
                 "--chunk-size", 16, "--no-progress", *EGL, "--label-studio", URL,
                 "--project", project, ok=False)  # fmt: skip
    assert "planted" in str(result.exception)
    assert len(tasks_of(project)) == 2
    # ... resumes: the rerun makes the 4 missing tasks, and a third run none
    monkeypatch.setattr(LabelStudio, "import_tasks", real_import)
    rows = select(world, world["labelled"], world["checkpoint"], sel1, "--label-studio", URL,
                  "--project", project)  # fmt: skip
    select(world, world["labelled"], world["checkpoint"], sel1, "--label-studio", URL,
           "--project", project)  # fmt: skip
    tasks = tasks_of(project)
    assert [t["data"]["eglpp_image"] for t in tasks] == [r["image"] for r in rows]
    check_tasks(world, tasks, rows, sel1)

    # the annotator: tasks of rank 1, 2, 4, 5, 6 submitted, rank 3 left open
    client, answers = LabelStudio(URL, TOKEN), {}
    for task in tasks:
        if task["data"]["eglpp_rank"] != 3:
            result_, answers[task["data"]["eglpp_image"]] = truth_result(
                world, task["data"]["eglpp_image"]
            )
            client.annotate(task["id"], result_, was_cancelled=False, lead_time=3.0)
    # another selection's task in the same project (an image of this one, annotated): ignored
    (foreign,) = client.import_tasks(project, [{"data": {
        **tasks[0]["data"], "eglpp_selection": "another-selection"}}])  # fmt: skip
    client.annotate(foreign, truth_result(world, rows[0]["image"], moved={})[0])
    merged = tmp_path / "merged" / "labelled2.json"
    out = cli("import", "--labelled", world["labelled"], "--selection", sel1, "--out", merged,
              "--label-studio", URL, "--project", project).output  # fmt: skip
    open_task = next(t for t in tasks if t["data"]["eglpp_rank"] == 3)
    assert f"1 tasks still open, not imported: #{open_task['id']} {rows[2]['image']}" in out
    assert "added 5 people on 5 images to 16 labelled images" in out
    ann = coco_to_annotations(read_coco(merged))
    assert len(ann) == 21 and all(p.is_file() for p in ann.image_paths)
    for k, path in enumerate(ann.image_paths[16:]):
        kp = answers[path.name]
        np.testing.assert_allclose(ann.joints[16 + k][kp[:, 2] > 0], kp[kp[:, 2] > 0, :2],
                                   atol=0.01)  # fmt: skip
        np.testing.assert_array_equal(ann.visible[16 + k], kp[:, 2] > 0)
        np.testing.assert_array_equal(ann.occluded[16 + k], kp[:, 2] == 1)  # ticked occluded
    assert sum(int((kp[:, 2] == 1).sum()) for kp in answers.values()) > 0  # some were
    assert client.project(project)["model_version"] == tasks[0]["predictions"][0]["model_version"]

    # rank 3 submitted unchanged, then imported into the merged file: the 5 merged before are
    # skipped, rank 3 stays open; corrected in a second annotation, it is imported
    client.annotate(open_task["id"], open_task["predictions"][0]["result"])
    args = ["import", "--labelled", merged, "--selection", sel1, "--label-studio", URL,
            "--project", project, "--out"]  # fmt: skip
    out = cli(*args, tmp_path / "merged" / "labelled3.json").output
    assert (
        f"1 tasks submitted with the prediction unchanged, so still open (correct them, or "
        f"pass --accept-unchanged if they are right), not imported: #{open_task['id']}" in out
    )
    assert "skipped 5 returned images already merged into" in out
    assert "added 0 people on 0 images to 21 labelled images" in out
    corrected, kp = truth_result(world, rows[2]["image"])
    client.annotate(open_task["id"], corrected)
    out = cli(*args, tmp_path / "merged" / "labelled4.json").output
    assert "added 1 people on 1 images to 21 labelled images" in out
    ann = coco_to_annotations(read_coco(tmp_path / "merged" / "labelled4.json"))
    np.testing.assert_allclose(ann.joints[21][kp[:, 2] > 0], kp[kp[:, 2] > 0, :2], atol=0.01)

    checkpoint2 = train_tiny(merged, tmp_path / "model2.pt", seed=1)
    second = select(world, merged, checkpoint2, tmp_path / "sel2")
    assert not set(answers) & {r["image"] for r in second}
    summary = json.loads((tmp_path / "sel2" / "summary.json").read_text())
    assert summary["n_candidates"] == 35 and summary["n_labelled"] == 21


def check_tasks(world, tasks, rows, sel):
    """Each task as the API shows it: eglpp's reasons, the prediction, the uploaded image."""
    digest = hashlib.sha256(world["checkpoint"].read_bytes()).hexdigest()[:12]
    coco = json.loads((sel / "selection_coco.json").read_text())
    client = LabelStudio(URL, TOKEN)
    assert len({t["data"]["eglpp_selection"] for t in tasks}) == 1
    for task, row, pre in zip(tasks, rows, coco["annotations"], strict=True):
        data = task["data"]
        assert data["eglpp_rank"] == int(row["rank"])
        assert data["eglpp_neighbours"] == [
            {"image": row[f"neighbour_{k}"], "p": float(row[f"p_{k}"])} for k in (1, 2, 3)
        ]
        assert f"rank {row['rank']} of 6" in data["eglpp_reasons"]
        assert "p(j|i)" in data["eglpp_reasons"]
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == digest
        assert prediction["score"] == pytest.approx((int(row["rank"]) - 1) / 6)
        points = {r["value"]["keypointlabels"][0]: r["value"] for r in prediction["result"]}
        kp = np.asarray(pre["keypoints"]).reshape(-1, 3)
        for j, name in enumerate(LSP.joints):  # percent of the image, back to pixel indices
            x, y = points[name]["x"] / 100 * SIZE - 0.5, points[name]["y"] / 100 * SIZE - 0.5
            np.testing.assert_allclose([x, y], kp[j, :2], atol=0.006)
        image = client._send("GET", data["image"], client._auth())
        assert image.status_code == 200
        assert image.content == (world["pool"] / row["image"]).read_bytes()


def test_bad_input(world, tmp_path):
    sel = tmp_path / "sel"
    project = new_project()
    select(world, world["labelled"], world["checkpoint"], sel)
    args = ["import", "--labelled", world["labelled"], "--selection", sel, "--out",
            tmp_path / "m.json", "--label-studio", URL, "--project"]  # fmt: skip
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    message = one_line_error(cli(*args[:-3], "--label-studio", closed, "--project", 1, ok=False))
    assert f"--label-studio {closed}: server unreachable" in message
    os.environ["LABEL_STUDIO_API_KEY"] = "not-the-token-0123456789"
    try:
        message = one_line_error(cli(*args, project, ok=False))
    finally:
        os.environ["LABEL_STUDIO_API_KEY"] = TOKEN
    assert "refused the API token in LABEL_STUDIO_API_KEY (HTTP 401" in message
    message = one_line_error(cli(*args, 987654, ok=False))
    assert message == f"--project 987654: not found on {URL}"
    no_neck = label_config(LSP).replace('    <Label value="neck" background="#9a6324"/>\n', "")
    lacking = new_project(no_neck)
    message = one_line_error(cli(*args, lacking, ok=False))
    assert f"--project {lacking}" in message and "lacks the lsp joint(s) neck" in message
    message = one_line_error(cli(*args, project, ok=False))
    assert "no task of the selection" in message
    # Label Studio cannot open selection_coco.json (the README points it to CVAT instead)
    coco = json.loads((sel / "selection_coco.json").read_text())
    with pytest.raises(LabelStudioError, match=r"HTTP 400.*image"):
        LabelStudio(URL, TOKEN).import_tasks(project, coco)

    # a config with one label more than the joints ("nose"): an annotation using it
    nose = label_config(LSP).replace("  </KeyPointLabels>", '    <Label value="nose"/>\n'
                                     "  </KeyPointLabels>")  # fmt: skip
    extra = new_project(nose)
    select(world, world["labelled"], world["checkpoint"], sel, "--label-studio", URL,
           "--project", extra)  # fmt: skip
    task = tasks_of(extra)[0]
    result, _ = truth_result(world, task["data"]["eglpp_image"], moved={})
    result[0]["value"]["keypointlabels"] = ["nose"]
    LabelStudio(URL, TOKEN).annotate(task["id"], result, was_cancelled=False)
    message = one_line_error(cli(*args, extra, ok=False))
    assert f"task {task['id']} ({task['data']['eglpp_image']})" in message
    assert "keypoint labelled 'nose', which is no joint" in message


@pytest.mark.parametrize("skeleton", [LSP, MPII])
def test_the_server_takes_each_config(skeleton):
    title = f"eglpp {skeleton.name} {uuid.uuid4().hex[:6]}"
    out = cli("label-studio-config", "--skeleton", skeleton.name, "--create-project", title,
              "--label-studio", URL).output  # fmt: skip
    project = LabelStudio(URL, TOKEN).project(int(re.search(r"created project (\d+)", out)[1]))
    assert project["label_config"].strip() == label_config(skeleton).strip()
    assert project_joints(project, skeleton).label == dict(enumerate(skeleton.joints))


def test_a_personal_access_token_works_too():
    """A personal access token (a JWT refresh token, Label Studio >= 1.17) in
    LABEL_STUDIO_API_KEY: exchanged for an access token and sent as Bearer."""
    legacy = LabelStudio(URL, TOKEN)
    try:
        pat = legacy.request("POST", "/api/token/")["token"]
    except LabelStudioError as exc:  # Label Studio shows a token once: not on a second run
        if "HTTP 409" not in str(exc) or REQUIRED:
            raise
        pytest.skip("the admin's personal access token was made by an earlier run on this server")
    project = new_project()
    client = LabelStudio(URL, pat)
    assert client.project(project)["id"] == project
    assert client._access and client._access != pat
