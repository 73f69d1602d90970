"""``eglpp label-studio-backend`` without a Label Studio server: the ML backend protocol through
FastAPI's TestClient, the state folder across restarts, and the bad requests.

The worker's thread is not started: each test calls :meth:`Worker.step` where the thread would
run it, so nothing depends on timing.
"""

import base64
import csv
import hashlib
import json
import os
import threading

import numpy as np
import pytest
from conftest import SIZE, select_config, truth_keypoints
from typer.testing import CliRunner

from eglpp.cli import app as cli_app
from eglpp.io import StateFileError
from eglpp.pose.skeleton import LSP
from eglpp.practitioner import live_loop
from eglpp.practitioner.label_studio_config import keypoint_result, label_config, project_joints
from eglpp.practitioner.live_loop import LiveLoop, RetrainConfig, prediction_score
from eglpp.practitioner.run import run_select

try:  # the eglpp[label-studio-backend] extra (.ci/run installs it: these tests run there)
    from fastapi.testclient import TestClient

    from eglpp.service.label_studio_backend import create_app
    from eglpp.service.worker import Worker
except ImportError:
    if os.environ.get("EGLPP_REQUIRE_LABEL_STUDIO") == "1":
        raise
    pytest.skip("no eglpp[label-studio-backend] extra (fastapi, uvicorn, httpx)",
                allow_module_level=True)  # fmt: skip

NAMES = project_joints({"label_config": label_config(LSP)}, LSP)
PROJECT = 7
EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2"]


def make_loop(world, state, every=2, **kw):
    config = select_config(1, strategy="egl++", hyperparameters=(("k", 4), ("perplexity", 2.0)),
                           input_size=SIZE, chunk_size=16)  # fmt: skip
    return LiveLoop(state, world["checkpoint"], world["labelled"], world["pool"], config,
                    RetrainConfig(every=every, epochs=1, batch_size=8), log=lambda m: None,
                    **kw)  # fmt: skip


def serve(loop, token=None):
    worker = Worker(loop, log=lambda m: None)  # not started: the tests call step()
    return TestClient(create_app(loop, worker, project=PROJECT, token=token)), worker


def task(world, i, task_id=None):
    name = world["pool_names"][i]
    return {"id": task_id or 100 + i, "project": PROJECT,
            "data": {"image": f"/data/upload/{PROJECT}/1a2b3c4d-{name}"}}  # fmt: skip


def answer(world, i, moved=((3, 1.5, -1.0),), ann_id=1, updated="2026-01-01T00:00:00Z"):
    """An annotator's annotation of pool image i: its true joints, some moved."""
    kp = np.asarray(truth_keypoints(world["pool_data"], i)).reshape(LSP.n_joints, 3)
    for j, dx, dy in moved:
        kp[j, :2] += (dx, dy)
    result = keypoint_result(kp[:, :2], kp[:, 2], (SIZE, SIZE), NAMES)
    return {"id": ann_id, "result": result, "updated_at": updated}, kp


def webhook(client, world, i, action="ANNOTATION_CREATED", **kw):
    ann, kp = answer(world, i, **kw)
    body = {"action": action, "task": task(world, i), "annotation": ann,
            "project": {"id": PROJECT}}  # fmt: skip
    return client.post("/webhook", json=body), kp


@pytest.fixture(scope="module")
def selection(world, tmp_path_factory):
    """``eglpp select`` of the whole pool with the same settings: the oracle of the scores."""
    out = tmp_path_factory.mktemp("live") / "sel"
    result = CliRunner().invoke(cli_app, [str(a) for a in (
        "select", "--checkpoint", world["checkpoint"], "--labelled", world["labelled"],
        "--pool", world["pool"], "--budget", 40, "--out", out, "--input-size", SIZE,
        "--chunk-size", 16, "--no-progress", *EGL)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with open(out / "selection.csv") as f:
        rows = list(csv.DictReader(f))
    coco = json.loads((out / "selection_coco.json").read_text())
    return rows, coco


def test_predict_is_the_strategy_order(world, tmp_path, selection):
    rows, coco = selection
    client, _ = serve(make_loop(world, tmp_path / "state"))
    assert client.get("/health").json()["status"] == "UP"
    digest = hashlib.sha256(world["checkpoint"].read_bytes()).hexdigest()[:12]
    setup = client.post("/setup", json={"project": f"{PROJECT}.1700000000",
                                        "schema": label_config(LSP)})  # fmt: skip
    assert setup.status_code == 200 and setup.json()["model_version"] == digest
    tasks = [task(world, i) for i in range(40)]
    answer_ = client.post("/predict", json={"tasks": tasks, "project": f"{PROJECT}.17"}).json()
    results = answer_["results"]
    assert len(results) == 40 and {r["model_version"] for r in results} == {digest}
    score = {r["image"]: float(r["score"]) for r in rows}
    kp_of = {im["file_name"]: a["keypoints"] for im, a in zip(coco["images"], coco["annotations"],
                                                              strict=True)}  # fmt: skip
    for i, result in enumerate(results):
        name = world["pool_names"][i]
        top, low = max(score.values()), min(score.values())
        assert result["score"] == pytest.approx(prediction_score(score[name], top, low), rel=1e-5)
        points = {r["value"]["keypointlabels"][0]: r["value"] for r in result["result"]}
        kp = np.asarray(kp_of[name]).reshape(-1, 3)
        for j, joint in enumerate(LSP.joints):  # percent of the image, back to pixel indices
            x, y = points[joint]["x"] / 100 * SIZE - 0.5, points[joint]["y"] / 100 * SIZE - 0.5
            np.testing.assert_allclose([x, y], kp[j, :2], atol=0.006)
    best = max(range(40), key=lambda i: results[i]["score"])
    assert results[best]["score"] == 1.0  # the most wanted task: 1, the others its fraction
    assert world["pool_names"][best] == rows[0]["image"]  # sorted by score: EGL++'s first


def test_annotations_retrain_and_restart(world, tmp_path, monkeypatch):
    state = tmp_path / "state"
    loop = make_loop(world, state, every=2)
    client, worker = serve(loop)
    v0 = loop.state.current()["model_version"]
    before = dict(loop.scores().images)
    reply, _ = webhook(client, world, 0)
    assert reply.status_code == 200 and reply.json()["new"] and reply.json()["pending"] == 1
    # the same task updated: replaces its record, not counted again
    reply, kp = webhook(client, world, 0, action="ANNOTATION_UPDATED", moved=((5, -2.0, 1.0),),
                        updated="2026-01-01T00:05:00Z")  # fmt: skip
    assert reply.status_code == 200 and reply.json() | {"new": False, "pending": 1} == reply.json()
    worker.step()
    assert worker.retrains == 0 and loop.state.current()["model_version"] == v0
    record = loop.state.record(100)
    np.testing.assert_allclose(np.asarray(record["keypoints"])[kp[:, 2] > 0],
                               kp[kp[:, 2] > 0], atol=1e-6)  # fmt: skip
    assert webhook(client, world, 1)[0].json()["pending"] == 2
    # a retrain cut short (killed while scoring the new model): the old model still serves
    real = LiveLoop.scores

    def killed(self, current=None):
        if current is not None:
            raise KeyboardInterrupt("killed (planted)")
        return real(self, current)

    monkeypatch.setattr(LiveLoop, "scores", killed)
    with pytest.raises(KeyboardInterrupt):
        loop.retrain()
    assert loop.state.current()["model_version"] == v0 and len(loop.state.pending()) == 2
    monkeypatch.setattr(LiveLoop, "scores", real)
    # restarted on the same state folder: same records, same version, and the retrain is due
    loop = make_loop(world, state, every=2)
    client, worker = serve(loop)
    assert loop.state.current()["model_version"] == v0
    assert [r["task"] for r in loop.state.records()] == [100, 101]
    served = []  # what /predict answers while the new model is scored: the old one, at once

    def scoring(*args, **kw):
        def ask():
            try:
                served.append(client.post("/predict", json={"tasks": [task(world, 2)]}).json())
            except BaseException as exc:  # noqa: BLE001 - shown by the assert below
                served.append(exc)

        asking = threading.Thread(target=ask)
        asking.start()
        asking.join(20)  # a /predict waiting for the retrain would never end (deadlock)
        assert served, "/predict blocked by the retrain"
        return run_select(*args, **kw)

    assert client.post("/predict", json={"tasks": [task(world, 2)]}).json()["model_version"] == v0
    monkeypatch.setattr(live_loop, "run_select", scoring)
    worker.step()
    assert served[0]["results"][0]["model_version"] == v0
    assert worker.retrains == 1 and worker.error is None
    current = loop.state.current()
    model = state / "rounds" / "0001" / "model.pt"
    assert current["model_version"] == hashlib.sha256(model.read_bytes()).hexdigest()[:12] != v0
    assert current["trained_on"] == [100, 101] and loop.state.pending() == []
    trained = json.loads((state / "rounds" / "0001" / "labelled.json").read_text())
    assert len(trained["annotations"]) == 16 + 2  # each task once, the updated keypoints
    assert client.post("/setup", json={}).json()["model_version"] == current["model_version"]
    after = loop.scores().images
    names = [world["pool_names"][i] for i in (0, 1)]
    assert not set(names) & set(after) and set(after) == set(before) - set(names)
    assert any(after[n][1]["score"] != before[n][1]["score"] for n in after)  # rescored
    results = client.post("/predict", json={"tasks": [task(world, i) for i in (0, 2)]}).json()
    assert results["results"][0]["result"] == []  # labelled now: nothing to predict
    assert results["results"][1]["model_version"] == current["model_version"]


def test_a_state_folder_restarts_with_its_own_flags_only(world, tmp_path):
    make_loop(world, tmp_path / "state", every=0)
    other = tmp_path / "labelled.json"  # the labelled set less one person
    doc = json.loads(world["labelled"].read_text())
    doc["annotations"] = doc["annotations"][1:]
    doc["images"] = [{**im, "file_name": str(world["root"] / im["file_name"])}
                     for im in doc["images"]]  # fmt: skip
    other.write_text(json.dumps(doc))
    with pytest.raises(StateFileError, match=r"made from another --labelled"):
        LiveLoop(tmp_path / "state", world["checkpoint"], other, world["pool"],
                 make_loop(world, tmp_path / "s2").config)  # fmt: skip
    assert make_loop(world, tmp_path / "state", every=0).state.current()["round"] == 0


def test_bad_requests(world, tmp_path):
    loop = make_loop(world, tmp_path / "state", every=0)
    client, _ = serve(loop)
    files = lambda: sorted(p.name for p in (tmp_path / "state" / "annotations").iterdir())  # noqa: E731

    def refused(status, path, text, **kw):
        reply = client.post(path, **kw)
        assert reply.status_code == status, reply.text
        assert text in reply.json()["detail"], reply.json()
        return reply.json()["detail"]

    refused(400, "/predict", "the body is not JSON", content=b"{tasks: [")
    refused(400, "/webhook", "expected a JSON object, got list", json=[1])
    refused(400, "/predict", "expected \"tasks\"", json={"tasks": "all"})
    refused(404, "/predict", "'/x/cat.jpg' is not in the pool",
            json={"tasks": [{"id": 1, "data": {"image": "/x/cat.jpg"}}]})  # fmt: skip
    refused(400, "/predict", "project 8 is not this backend's project 7",
            json={"tasks": [], "project": "8.1700"})  # fmt: skip
    ann, _ = answer(world, 3)
    body = {"action": "ANNOTATION_CREATED", "task": task(world, 3), "annotation": ann}
    refused(400, "/webhook", "project 9 is not this backend's project 7",
            json={**body, "project": {"id": 9}})  # fmt: skip
    refused(400, "/webhook", "expected \"task\"", json={"action": "ANNOTATION_CREATED"})
    nose = json.loads(json.dumps(ann))
    nose["result"][0]["value"]["keypointlabels"] = ["nose"]
    refused(422, "/webhook", "keypoint labelled 'nose', which is no joint",
            json={**body, "annotation": nose})  # fmt: skip
    outside = json.loads(json.dumps(ann))
    outside["result"][0]["value"]["x"] = 180.0
    refused(422, "/webhook", "outside", json={**body, "annotation": outside})
    prediction = client.post("/predict", json={"tasks": [task(world, 3)]}).json()["results"][0]
    refused(422, "/webhook", "unchanged",
            json={**body, "annotation": {"id": 2, "result": prediction["result"]}})  # fmt: skip
    assert files() == []  # nothing written by a refused request
    other = {**body, "task": {**task(world, 3), "id": 555}}
    assert client.post("/webhook", json=body).status_code == 200
    refused(422, "/webhook", "annotated already, in task 103", json=other)
    assert files() == ["task-103.json"]
    ignored = client.post("/webhook", json={"action": "PROJECT_UPDATED"}).json()
    assert ignored["status"] == "ignored"


def test_access_token(world, tmp_path):
    client, _ = serve(make_loop(world, tmp_path / "state", every=0), token="s3cret")
    assert client.get("/health").status_code == 401
    assert client.get("/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    basic = base64.b64encode(b"label-studio:s3cret").decode()  # Label Studio's Basic Auth
    assert client.get("/health", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    reply = client.post("/predict", json={"tasks": [task(world, 0)]})
    assert reply.status_code == 401 and "access token" in reply.json()["detail"]


def test_off_loopback_needs_a_token(world, tmp_path, monkeypatch):
    monkeypatch.delenv("EGLPP_BACKEND_TOKEN", raising=False)
    args = ["label-studio-backend", "--checkpoint", str(world["checkpoint"]), "--labelled",
            str(world["labelled"]), "--pool", str(world["pool"]), "--state",
            str(tmp_path / "s"), "--host"]  # fmt: skip
    result = CliRunner().invoke(cli_app, [*args, "0.0.0.0"])
    assert result.exit_code != 0 and "EGLPP_BACKEND_TOKEN" in str(result.exception)
    assert not (tmp_path / "s").exists()  # refused before anything was written
    from eglpp.cli.label_studio_backend import is_loopback

    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3",
                                     "example.org")] == [True, True, True, False, False, False]
