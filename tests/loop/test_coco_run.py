"""``eglpp run --dataset coco:FILE --images DIR``: the experiment on a user's own labelled COCO
keypoints file, its test split fixed by the seed, recorded in split.json, the same on a
resume, and a changed file refused."""

import json

import numpy as np
import pytest
from coco17_people import write_coco17
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.cli.run_dataset import fit_to_file
from eglpp.experiment.coco_data import TEST_FRACTION, coco_split
from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.data import build_data

N_IMAGES = 24  # 32 people: a second one on every third image


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """The file in ann/, its images in photos/ (so the run needs --images)."""
    root = tmp_path_factory.mktemp("coco")
    (root / "ann").mkdir()
    path, doc = write_coco17(root / "ann", N_IMAGES, image_folder=root / "photos", seed=9)
    return path, doc, root / "photos"


def _names(doc: dict) -> list[str]:
    by_id = {im["id"]: im["file_name"] for im in doc["images"]}
    return [by_id[a["image_id"]] for a in doc["annotations"]]


def test_the_split_is_by_image_and_by_seed(people):
    path, doc, photos = people
    names = _names(doc)
    test = coco_split(names, seed=0)
    assert len(test) == round(TEST_FRACTION * N_IMAGES) and set(test) <= set(names)
    assert coco_split(names[::-1], seed=0) == test  # the file's order does not matter
    cfg = config_from_dict({"dataset": "coco", "data_root": str(path), "images_root": str(photos),
                            "input_size": 32, "model": {"n_joints": 17}, "initial": 4,
                            "budget": 2},
                           base=preset("tiny"))  # fmt: skip
    data = build_data(cfg)
    pool = {p.name for p in data.pool.annotations.image_paths}
    tested = {p.name for p in data.test.annotations.image_paths}
    assert tested == set(test) and not pool & tested  # people of an image stay together
    assert len(data.pool) + len(data.test) == len(names) == data.split["n_pool"] + data.split[
        "n_test"]  # fmt: skip
    assert data.split["test_images"] == test and len(data.split["sha256"]) == 64


def _run(out, photos, path, *extra):
    args = ["run", "--dataset", f"coco:{path}", "--images", photos, "--preset", "tiny",
            "--out", out, "--strategies", "random,egl++", "--runs", "1", "--cycles", "1",
            "--budget", "3", "--initial", "6", "--set", "input_size=32",
            "--set", "model={n_stacks: 1, channels: 8, depth: 2}",
            "--set", "base_train.epochs=1", "--set", "cycle_train.epochs=1",
            "--set", "strategy.egl++.k=3", "--set", "strategy.egl++.perplexity=2", *extra]
    return CliRunner().invoke(app, [str(a) for a in args])  # fmt: skip


def test_run_on_a_coco_file_records_its_split_and_resumes_on_it(people, tmp_path):
    path, doc, photos = people
    out = tmp_path / "run"
    first = _run(out, photos, path)
    assert first.exit_code == 0, (first.output, first.exception)
    split = json.loads((out / "split.json").read_text())
    assert split["test_images"] == coco_split(_names(doc), seed=0)
    assert split["n_pool"] + split["n_test"] == len(doc["annotations"])
    config = json.loads((out / "config.json").read_text())
    assert (config["dataset"], config["data_root"]) == ("coco", str(path))
    assert config["images_root"] == str(photos) and config["model"]["n_joints"] == 17
    base = json.loads((out / "run-00" / "base" / "metrics.json").read_text())
    assert base["metric"] == "PCK@0.2" and base["n"] == split["n_test"]
    assert {"mean", "ap50", "ap75"} <= set(base["oks"])  # COCO-17: COCO's keypoint AP too
    results = json.loads((out / "results.json").read_text())
    assert set(results["scores"]) == {"random", "egl++"}
    selection = np.load(out / "run-00" / "egl++" / "cycle-01" / "selection.npz")["query_indices"]

    # a resume that adds a cycle: the same split, the first cycle as it was
    again = _run(out, photos, path, "--cycles", "2")
    assert again.exit_code == 0, (again.output, again.exception)
    assert json.loads((out / "split.json").read_text()) == split
    cycle1 = np.load(out / "run-00" / "egl++" / "cycle-01" / "selection.npz")["query_indices"]
    np.testing.assert_array_equal(cycle1, selection)
    assert (out / "run-00" / "egl++" / "cycle-02" / "metrics.json").is_file()

    # the file changed (one keypoint moved): refused, naming the file
    doc2 = json.loads(path.read_text())
    doc2["annotations"][0]["keypoints"][15] += 1.0
    path.write_text(json.dumps(doc2))
    try:
        changed = _run(out, photos, path, "--cycles", "2")
    finally:
        path.write_text(json.dumps(doc))
    assert changed.exit_code != 0
    assert f"{path} changed since this run began" in str(changed.exception)


def test_coco_flags_are_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths: the error box does not wrap them
    bad = CliRunner().invoke(app, ["run", "--dataset", "coco:", "--out", "a"])
    assert bad.exit_code != 0 and "coco: needs its file" in bad.output
    bad = CliRunner().invoke(app, ["run", "--images", "photos", "--out", "b"])
    assert bad.exit_code != 0 and "applies to --dataset coco:FILE only" in bad.output
    gone = CliRunner().invoke(app, ["run", "--dataset", "coco:none.json", "--out", "c"])
    assert gone.exit_code != 0 and "none.json: no such file" in gone.output


def test_a_skeleton_of_its_own_sets_the_network_and_the_metric(tmp_path):
    """An animal's 3 keypoints: the network predicts 3 joints and, with no shoulders and hips,
    PCK is the box's (pckb), unless the settings say otherwise."""
    kp = [[5, 5, 2, 9, 5, 2, 7, 9, 2]]
    doc = {"images": [{"id": 1, "file_name": "a.jpg"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": kp[0]}],
           "categories": [{"id": 1, "name": "animal",
                           "keypoints": ["snout", "left_ear", "right_ear"]}]}  # fmt: skip
    path = tmp_path / "animal.json"
    path.write_text(json.dumps(doc))
    cfg = config_from_dict({"dataset": "coco", "data_root": str(path)}, base=preset("tiny"))
    fitted = fit_to_file(cfg, {})
    assert (fitted.model.n_joints, fitted.metric) == (3, "pckb")
    given = fit_to_file(cfg, {"metric": "pck", "model": {"n_joints": 14}})
    assert (given.model.n_joints, given.metric) == (cfg.model.n_joints, cfg.metric)
