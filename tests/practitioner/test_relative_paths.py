"""Relative paths, as a user types them: select → import → train from any working directory.

The COCO labelled set's folder is the root of its relative file names; given relative to the
working directory, it must be joined once (``data/labelled_images/…``), never twice
(``data/data/labelled_images/…``), and the merged file must read from anywhere.
"""

import json
import shutil

import numpy as np
from conftest import SIZE, truth_keypoints
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.practitioner.coco import coco_to_annotations, read_coco

TINY_TRAIN = ["--stacks", "1", "--channels", "8", "--depth", "2", "--input-size", str(SIZE),
              "--epochs", "1", "--val-fraction", "0", "--no-progress"]  # fmt: skip


def _data(world, tmp_path, monkeypatch):
    """``tmp_path/data`` holds the labelled set, the pool and the model; the working
    directory is ``tmp_path``."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(world["labelled"], data / "labelled.json")
    shutil.copytree(world["root"] / "labelled_images", data / "labelled_images")
    shutil.copytree(world["pool"], data / "pool")
    shutil.copy(world["checkpoint"], data / "model.pt")
    monkeypatch.chdir(tmp_path)


def _invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _select(labelled, pool, checkpoint, out):
    return _invoke("select", "--checkpoint", checkpoint, "--labelled", labelled, "--pool", pool,
                   "--budget", 4, "--out", out, "--strategy", "egl++", "--param", "k=4",
                   "--param", "perplexity=2", "--input-size", SIZE, "--chunk-size", 16,
                   "--no-progress")  # fmt: skip


def _annotate(world, selection_json, returned_json):
    """The simulated annotator: the renderer's truth of each selected image."""
    sel = json.loads(selection_json.read_text())
    images, anns = [], []
    for k, (im, pre) in enumerate(zip(sel["images"], sel["annotations"], strict=True)):
        i = world["pool_names"].index(im["file_name"])
        images.append({"id": 1 + k, "file_name": im["file_name"]})
        anns.append({"id": 1 + k, "image_id": 1 + k, "category_id": 1, "bbox": pre["bbox"],
                     "keypoints": truth_keypoints(world["pool_data"], i)})  # fmt: skip
    doc = {"images": images, "annotations": anns, "categories": sel["categories"]}
    returned_json.write_text(json.dumps(doc))


def test_select_with_a_relative_coco_labelled_set(world, tmp_path, monkeypatch):
    _data(world, tmp_path, monkeypatch)
    _select("data/labelled.json", "data/pool", "data/model.pt", "sel1")
    assert len(json.loads((tmp_path / "sel1" / "summary.json").read_text())["selected"]) == 4


def test_import_writes_a_file_that_train_and_select_read_from_anywhere(
    world, tmp_path, monkeypatch
):
    _data(world, tmp_path, monkeypatch)
    _select(tmp_path / "data/labelled.json", tmp_path / "data/pool", tmp_path / "data/model.pt",
            tmp_path / "sel1")  # fmt: skip
    _annotate(world, tmp_path / "sel1/selection_coco.json", tmp_path / "returned.json")
    _invoke("import", "--labelled", "data/labelled.json", "--annotations", "returned.json",
            "--selection", "sel1", "--out", "data/labelled2.json")  # fmt: skip
    merged = read_coco(tmp_path / "data/labelled2.json")
    assert not any(im["file_name"].startswith("data/") for im in merged.images)
    paths = coco_to_annotations(merged).image_paths
    assert len(paths) == 20 and all(p.is_file() for p in paths)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # another working directory, relative paths again
    _invoke("train", "../data/labelled2.json", *TINY_TRAIN, "--out", "model2")
    summary = json.loads((elsewhere / "model2/train.json").read_text())
    assert summary["n_train"] + summary["n_test"] == 20
    _select("../data/labelled2.json", "../data/pool", "model2/model.pt", "sel2")
    second = json.loads((elsewhere / "sel2/summary.json").read_text())
    assert second["n_labelled"] == 20 and second["n_candidates"] == 36
    first = json.loads((tmp_path / "sel1/summary.json").read_text())["selected"]
    assert not set(first) & set(second["selected"])
    assert np.isfinite(summary["test"]["mean"])
