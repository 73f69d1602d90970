"""The live loop on the demo pool against a running Label Studio: what it costs, and the
screenshot of the Data Manager sorted by eglpp's score (README, "Active learning inside Label
Studio").

    export LABEL_STUDIO_API_KEY=…  EGLPP_LS_USER=… EGLPP_LS_PASSWORD=…   # the browser's login
    python benchmarks/label_studio_loop.py --label-studio http://127.0.0.1:8080 --demo demo \
        --checkpoint demo/model/model.pt --every 10 --screenshot docs/label_studio_backend.png

Makes a project, uploads the demo pool as tasks, starts ``eglpp label-studio-backend`` and
connects it through Label Studio's API (Basic Auth with the access token), waits for every
task's prediction, submits ``--every`` corrected annotations (the pool's truth, one joint moved
by 2 px) of the tasks with the highest score, and measures the time from the last submission
to every open task holding the retrained model's prediction. Prints a table, writes
benchmarks/results/label_studio_loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from eglpp.io import atomic_write_json
from eglpp.pose.skeleton import LSP
from eglpp.practitioner.label_studio import LabelStudio, connect
from eglpp.practitioner.label_studio_config import keypoint_result, label_config, project_joints

TOKEN = "demo-backend-token"


def wait(check, timeout=1800):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError("gave up waiting")


def open_tasks(client: LabelStudio, project: int) -> list[dict]:
    return [t for t in client.tasks(project) if not t.get("annotations")]


def screenshot(url: str, project: int, view: int, path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(f"{url}/user/login/")
        driver.find_element(By.NAME, "email").send_keys(os.environ["EGLPP_LS_USER"])
        driver.find_element(By.NAME, "password").send_keys(os.environ["EGLPP_LS_PASSWORD"])
        driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
        time.sleep(3)
        driver.get(f"{url}/projects/{project}/data?tab={view}")
        time.sleep(12)  # the Data Manager's table and thumbnails load
        path.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(path))
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label-studio", required=True)
    ap.add_argument("--demo", type=Path, default=Path("demo"))
    ap.add_argument("--checkpoint", type=Path, default=Path("demo/model/model.pt"))
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--state", type=Path, default=Path("demo/backend"))
    ap.add_argument("--screenshot", type=Path, default=None)
    args = ap.parse_args()
    client = connect(args.label_studio)
    project = client.create_project("eglpp live loop (demo)", label_config(LSP))["id"]
    names = project_joints(client.project(project), LSP)
    pool = sorted((args.demo / "pool").glob("*.jpg"))
    t0 = time.perf_counter()
    urls = [client.upload(project, p) for p in pool]
    client.import_tasks(project, [{"data": {"image": u}} for u in urls])
    upload_s = time.perf_counter() - t0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = f"http://127.0.0.1:{port}"
    log = open(args.state.with_suffix(".log"), "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["eglpp", "label-studio-backend", "--checkpoint", str(args.checkpoint), "--labelled",
         str(args.demo / "labelled.json"), "--pool", str(args.demo / "pool"), "--state",
         str(args.state), "--retrain-every", str(args.every), "--retrain-epochs",
         str(args.epochs), "--label-studio", args.label_studio, "--project", str(project),
         "--port", str(port)],
        env={**os.environ, "EGLPP_BACKEND_TOKEN": TOKEN}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait(lambda: "listening" in Path(log.name).read_text())
        client.request("POST", "/api/ml", json={
            "url": backend, "project": project, "title": "eglpp", "auth_method": "BASIC_AUTH",
            "basic_auth_user": "label-studio", "basic_auth_pass": TOKEN})  # fmt: skip
        hooks = client.request("GET", "/api/webhooks/", params={"project": project})
        hook = next(h for h in hooks if h["url"] == backend + "/webhook")
        client.request("PATCH", f"/api/webhooks/{hook['id']}/",
                       json={"headers": {"Authorization": f"Bearer {TOKEN}"}})  # fmt: skip
        first = wait(lambda: (lambda t: len(t) == len(pool) and all(x["predictions"] for x in t)
                              and t)(open_tasks(client, project)))  # fmt: skip
        start_s = time.perf_counter() - t0
        v0 = first[0]["predictions"][0]["model_version"]
        truth = json.loads((args.demo / "pool_truth.json").read_text())
        kp_of = {Path(im["file_name"]).name: np.asarray(a["keypoints"]).reshape(-1, 3)
                 for im, a in zip(truth["images"], truth["annotations"], strict=True)}  # fmt: skip
        size = {Path(im["file_name"]).name: (im["width"], im["height"]) for im in truth["images"]}
        order = sorted(first, key=lambda t: -t["predictions"][0]["score"])
        for task in order[: args.every]:
            name = task["data"]["image"].rsplit("/", 1)[-1].split("-", 1)[1]
            kp = kp_of[name].copy()
            kp[3, :2] += 2.0 * (kp[3, 2] > 0)
            client.annotate(task["id"], keypoint_result(kp[:, :2], kp[:, 2], size[name], names))
        t_n = time.perf_counter()
        wait(lambda: all(t["predictions"] and t["predictions"][0]["model_version"] != v0
                         for t in open_tasks(client, project)))  # fmt: skip
        loop_s = time.perf_counter() - t_n
        v1 = client.project(project)["model_version"]
        data = {"title": "eglpp: most wanted first", "ordering": ["-tasks:predictions_score"]}
        view = client.request("POST", "/api/dm/views/", json={"project": project, "data": data})
        if args.screenshot:
            screenshot(args.label_studio, project, view["id"], args.screenshot)
    finally:
        proc.terminate()
        proc.wait()
    row = {"pool": len(pool), "every": args.every, "retrain_epochs": args.epochs,
           "upload_s": round(upload_s, 1), "first_predictions_s": round(start_s, 1),
           "nth_annotation_to_new_predictions_s": round(loop_s, 1), "model_versions": [v0, v1],
           "load_average": os.getloadavg(), "cpus": os.cpu_count(),
           "python": sys.version.split()[0], "machine": platform.platform()}  # fmt: skip
    print(json.dumps(row, indent=1))
    atomic_write_json(Path(__file__).parent / "results" / "label_studio_loop.json", row)


if __name__ == "__main__":
    main()
