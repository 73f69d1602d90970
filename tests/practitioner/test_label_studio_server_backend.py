"""``eglpp label-studio-backend`` connected to a real Label Studio server (the one of
test_label_studio_server.py, its fixture and its skip rules): a live loop, end to end.

The backend runs as its own process (killed with SIGKILL mid-retrain, then started again).
Label Studio connects it through its API as a user does in the project's settings (POST /api/ml
with Basic Auth: the access token as password; the webhook it makes gets the token as a
header), calls /setup, and sends the annotators' submissions to /webhook.
"""

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import test_label_studio_server as real
from conftest import SIZE
from test_label_studio_server import cli, new_project, pytestmark, server, truth_result  # noqa: F401

from eglpp.practitioner.label_studio import LabelStudio
from eglpp.practitioner.live_loop import prediction_score

pytest.importorskip("fastapi") if os.environ.get("EGLPP_REQUIRE_LABEL_STUDIO") != "1" else None
TOKEN = "backend-token-0123"  # the backend's access token (EGLPP_BACKEND_TOKEN)
EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2"]
N_POOL, EVERY = 10, 3


def wait(what, check, timeout=300):
    """Poll ``check`` until it returns something true; fail naming ``what`` after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"waited {timeout} s for {what}")


@pytest.fixture
def processes():
    """The backends started: killed at the end, whether the test passed or not."""
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Backend:
    """``eglpp label-studio-backend`` in its own process."""

    def __init__(self, world, pool, state, project, log, processes):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "eglpp.cli", "label-studio-backend",
                     "--checkpoint", world["checkpoint"], "--labelled", world["labelled"],
                     "--pool", pool, "--state", state, "--input-size", SIZE, "--chunk-size", 16,
                     *EGL, "--retrain-every", EVERY, "--retrain-epochs", 2,
                     "--label-studio", real.URL, "--project", project,
                     "--port", self.port]  # fmt: skip
        self.log, self.proc, self.processes = log, None, processes

    def start(self):
        env = {**os.environ, "EGLPP_BACKEND_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([str(a) for a in self.args], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        self.processes.append(self.proc)
        wait("the backend to answer", lambda: self.health() or self.proc.poll() is not None)
        assert self.proc.poll() is None, "the backend exited"
        return self

    def health(self):
        import requests

        try:
            answer = requests.get(self.url + "/health", timeout=5,
                                  headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        except OSError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def predicted(client, project):
    """task id -> (image, its predictions) of the open tasks."""
    return {t["id"]: (t["data"]["image"], t["predictions"]) for t in client.tasks(project)
            if not t.get("annotations")}  # fmt: skip


def oracle(world, labelled, checkpoint, pool, out):
    """``eglpp select`` of the whole pool: EGL++'s ranking and scores."""
    cli("select", "--checkpoint", checkpoint, "--labelled", labelled, "--pool", pool,
        "--budget", 1, "--out", out, "--input-size", SIZE, "--chunk-size", 16, "--no-progress",
        *EGL)  # fmt: skip
    with open(out / "scores.csv") as f:
        return {r["image"]: float(r["score"]) for r in csv.DictReader(f)}


def mapped(scores, url):
    """The prediction score of the image at ``url`` by the strategy's ``scores``."""
    return prediction_score(scores[image_name(url)], max(scores.values()), min(scores.values()))


def image_name(url):
    return url.rsplit("/", 1)[-1].split("-", 1)[1]  # Label Studio's upload: 1a2b3c4d-NAME


def test_live_loop_on_a_real_server(world, tmp_path, processes):
    client = LabelStudio(real.URL, real.TOKEN)
    project = new_project()
    pool = tmp_path / "pool"
    pool.mkdir()
    for name in world["pool_names"][:N_POOL]:
        shutil.copy(world["pool"] / name, pool / name)
    urls = [client.upload(project, pool / n) for n in sorted(os.listdir(pool))]
    tasks = client.import_tasks(project, [{"data": {"image": u}} for u in urls])
    assert len(tasks) == N_POOL
    state = tmp_path / "state"
    log = open(os.environ.get("EGLPP_BACKEND_LOG", tmp_path / "backend.log"), "w")
    backend = Backend(world, pool, state, project, log, processes).start()
    v0 = hashlib.sha256(world["checkpoint"].read_bytes()).hexdigest()[:12]
    assert backend.health()["model_version"] == v0
    # connected as a user does: project settings → Model (Basic Auth: the token as password)
    ml = client.request("POST", "/api/ml", json={
        "url": backend.url, "project": project, "title": "eglpp", "auth_method": "BASIC_AUTH",
        "basic_auth_user": "label-studio", "basic_auth_pass": TOKEN})  # fmt: skip
    assert client.request("GET", f"/api/ml/{ml['id']}")["state"] == "CO"  # /setup answered
    hooks = client.request("GET", "/api/webhooks/", params={"project": project})
    (hook,) = [h for h in hooks if h["url"] == backend.url + "/webhook"]  # made by Label Studio
    client.request("PATCH", f"/api/webhooks/{hook['id']}/",
                   json={"headers": {"Authorization": f"Bearer {TOKEN}"}})  # fmt: skip

    # predictions with the strategy's scores: the highest is EGL++'s first
    scores = oracle(world, world["labelled"], world["checkpoint"], pool, tmp_path / "sel0")
    shown = wait("predictions of every task", lambda: (lambda p: len(p) == N_POOL and all(
        len(x[1]) == 1 for x in p.values()) and p)(predicted(client, project)))  # fmt: skip
    for image, (prediction,) in shown.values():
        assert prediction["model_version"] == v0 and len(prediction["result"]) >= 14
        assert prediction["score"] == pytest.approx(mapped(scores, image), rel=1e-5)
    order = sorted(shown, key=lambda t: -shown[t][1][0]["score"])
    assert image_name(shown[order[0]][0]) == max(scores, key=scores.get)

    # the annotator submits EGL++'s first three (the third triggers a retrain): killed mid-way
    submitted = [client.annotate(t, truth_result(world, image_name(shown[t][0]))[0],
                                 was_cancelled=False) for t in order[:EVERY]]  # fmt: skip
    saw = wait("the retrain to start", lambda: (lambda h: h and (h["retraining"] or
                                                                 h["model_version"] != v0) and h)(
        backend.health()))  # fmt: skip
    backend.kill()
    print(f"killed while retraining: {saw['retraining']}, model version {saw['model_version']}")
    # one more submitted while the backend is down (its webhook is lost), one corrected
    client.annotate(order[EVERY], truth_result(world, image_name(shown[order[EVERY]][0]))[0])
    backend.start()
    wait("the retrained model to serve with no annotation pending",
         lambda: (lambda h: h and h["model_version"] != v0 and not h["pending"]
                  and not h["retraining"])(backend.health()))  # fmt: skip
    current = json.loads((state / "current.json").read_text())
    assert sorted(current["trained_on"]) == sorted(order[:EVERY + 1])  # none lost or twice
    assert len(list((state / "annotations").iterdir())) == EVERY + 1
    checkpoint = tmp_path / "state" / "rounds" / f"{current['round']:04d}" / "model.pt"
    v1 = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]
    assert current["model_version"] == v1 != v0
    trained = json.loads((checkpoint.parent / "labelled.json").read_text())
    assert len(trained["annotations"]) == 16 + EVERY + 1
    assert client.project(project)["model_version"] == v1

    # the open tasks' predictions replaced: the new version only, the queue reordered by it
    new = wait("the new predictions", lambda: (lambda p: all(
        [x["model_version"] for x in pr] == [v1] for _, pr in p.values()) and p)(
        predicted(client, project)))  # fmt: skip
    assert len(new) == N_POOL - EVERY - 1
    scores1 = oracle(world, checkpoint.parent / "labelled.json", checkpoint, pool,
                     tmp_path / "sel1")  # fmt: skip
    for image, (prediction,) in new.values():
        assert prediction["score"] == pytest.approx(mapped(scores1, image), rel=1e-5)
        assert prediction["score"] != pytest.approx(mapped(scores, image), rel=1e-5)
    top = max(new, key=lambda t: new[t][1][0]["score"])
    assert image_name(new[top][0]) == max(scores1, key=scores1.get)

    # an annotation corrected again (ANNOTATION_UPDATED): its record replaced, not counted
    first = submitted[0]
    moved, kp = truth_result(world, image_name(shown[order[0]][0]), moved={7: (2.0, 1.0)})
    client.request("PATCH", f"/api/annotations/{first['id']}/", json={"result": moved})
    record = state / "annotations" / f"task-{order[0]}.json"
    wait("the update recorded", lambda: json.loads(record.read_text())["keypoints"][7][:2]
         == pytest.approx(kp[7, :2].tolist(), abs=0.01))  # fmt: skip
    assert backend.health()["pending"] == 0
    assert len(list((state / "annotations").iterdir())) == EVERY + 1
    backend.kill()
    log.close()
