"""A practitioner's own skeleton end to end: COCO-17 and a 6-keypoint animal through
``eglpp train`` (tiny, one epoch) → ``select`` → annotation in a tool's joint order →
``import`` → the merged file, and the Label Studio config of the file's keypoints."""

import json

import numpy as np
import pytest
from conftest import SIZE, render
from own_skeletons import ANIMAL, ANIMAL_LIMBS, category, own_keypoints, write_own
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.skeleton import COCO17
from eglpp.practitioner.coco import coco_to_annotations, read_coco

TINY = ["--stacks", "1", "--channels", "8", "--depth", "2", "--input-size", str(SIZE),
        "--epochs", "1", "--batch-size", "8", "--val-fraction", "0", "--no-progress"]  # fmt: skip
EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2"]


def _run(args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _annotate(kind, world, selection, returned):
    """The annotator's export: the truth, keypoints in a shuffled order, no ``skeleton``."""
    sel = json.loads(selection.read_text())
    names = category(kind)["keypoints"]
    order = np.random.default_rng(3).permutation(len(names))
    images, anns = [], []
    for k, im in enumerate(sel["images"]):
        i = world["pool_names"].index(im["file_name"])
        kp = own_keypoints(kind, world["pool_data"], i)[order]
        images.append({"id": 50 + k, "file_name": im["file_name"]})
        anns.append({"id": 90 + k, "image_id": 50 + k, "category_id": 1,
                     "keypoints": [float(v) for v in kp.ravel()]})  # fmt: skip
    returned.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "x", "keypoints": [names[j] for j in order]}]}))  # fmt: skip


@pytest.mark.parametrize("kind", ["coco17", "animal"])
def test_own_skeleton_train_select_import(world, tmp_path, kind):
    names, data = render(tmp_path / "lab", 12, seed=31, prefix="lab")
    labelled = write_own(tmp_path / "labelled.json", kind, [f"lab/{n}" for n in names], data,
                         range(12))  # fmt: skip
    J = len(category(kind)["keypoints"])
    out = _run(["train", labelled, *TINY, "--out", tmp_path / "train"])
    metric = "PCK@0.2" if kind == "coco17" else "PCK-bbox@0.2"  # the animal has no torso
    line = next(x for x in out.splitlines() if "on 1 test images" in x)  # with its error
    assert line.startswith(f"{metric} "), line
    # COCO's keypoint AP beside it for COCO-17 (COCO's sigmas); the animal has no sigmas
    assert any(x.startswith("OKS AP ") for x in out.splitlines()) == (kind == "coco17"), out
    summary = json.loads((tmp_path / "train" / "train.json").read_text())
    assert summary["model"]["n_joints"] == J and len(summary["test"]["per_joint"]) == J

    _run(["select", "--checkpoint", tmp_path / "train" / "model.pt", "--labelled", labelled,
          "--pool", world["pool"], "--budget", 4, "--out", tmp_path / "sel", "--input-size",
          SIZE, "--chunk-size", 16, "--no-progress", *EGL])  # fmt: skip
    doc = json.loads((tmp_path / "sel" / "selection_coco.json").read_text())
    assert doc["categories"][0]["keypoints"] == category(kind)["keypoints"]
    assert doc["categories"][0]["skeleton"] == category(kind)["skeleton"]
    assert all(len(a["keypoints"]) == 3 * J for a in doc["annotations"])
    assert (tmp_path / "sel" / "contact_sheet.png").stat().st_size > 2000

    _annotate(kind, world, tmp_path / "sel" / "selection_coco.json", tmp_path / "ret.json")
    merged = tmp_path / "labelled2.json"
    _run(["import", "--labelled", labelled, "--annotations", tmp_path / "ret.json",
          "--selection", tmp_path / "sel", "--out", merged])  # fmt: skip
    coco = read_coco(merged)
    assert coco.skeleton == read_coco(labelled).skeleton
    ann = coco_to_annotations(coco)
    assert len(ann) == 16
    for k, im in enumerate(doc["images"]):  # the merged joints: the truth, in the file's order
        truth = own_keypoints(kind, world["pool_data"], world["pool_names"].index(im["file_name"]))
        np.testing.assert_allclose(ann.joints[12 + k][truth[:, 2] > 0],
                                   truth[truth[:, 2] > 0, :2], atol=0.01)  # fmt: skip
        np.testing.assert_array_equal(ann.visible[12 + k], truth[:, 2] > 0)

    xml = _run(["label-studio-config", "--skeleton", labelled])
    assert all(f'<Label value="{n}"' in xml for n in category(kind)["keypoints"])


def test_skeletons_of_the_files(tmp_path, world):
    names, data = render(tmp_path / "lab", 2, seed=31, prefix="lab")
    coco = read_coco(write_own(tmp_path / "c.json", "coco17", names, data, range(2)))
    assert coco.skeleton is COCO17
    animal = read_coco(write_own(tmp_path / "a.json", "animal", names, data, range(2))).skeleton
    assert animal.joints == tuple(ANIMAL) and animal.name == "animal"
    assert animal.flip_pairs == ((1, 2), (4, 5)) and not animal.has_torso
    assert [[a + 1, b + 1] for a, b in animal.limbs] == ANIMAL_LIMBS


def test_pck_normaliser_flag(world, tmp_path):
    names, data = render(tmp_path / "lab", 4, seed=31, prefix="lab")
    animal = write_own(tmp_path / "a.json", "animal", [f"lab/{n}" for n in names], data, range(4))
    result = CliRunner().invoke(app, ["train", str(animal), *TINY, "--pck-normaliser", "torso",
                                      "--out", str(tmp_path / "t")])  # fmt: skip
    assert result.exit_code != 0
    assert "--pck-normaliser" in result.output and "lacks some: use bbox" in result.output
    result = CliRunner().invoke(app, ["train", str(animal), *TINY, "--pck-normaliser", "head",
                                      "--out", str(tmp_path / "t")])  # fmt: skip
    assert result.exit_code != 0 and "only MPII" in result.output
