"""End to end on rendered people: select → simulated annotation → import → retrain → select."""

import csv
import json

import numpy as np
import pytest
from conftest import SIZE, train_tiny, truth_keypoints
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.skeleton import LSP
from eglpp.practitioner.coco import read_coco

EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2"]


def _select(world, labelled, checkpoint, out, budget=6, extra=EGL):
    args = ["select", "--checkpoint", str(checkpoint), "--labelled", str(labelled),
            "--pool", str(world["pool"]), "--budget", str(budget), "--out", str(out),
            "--input-size", str(SIZE), "--chunk-size", "16", "--no-progress", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    with open(out / "selection.csv") as f:
        return list(csv.DictReader(f))


def annotate(world, selection_json, returned_json):
    """The simulated annotator: the renderer's ground truth, exported the way a tool might —
    its own image ids, a folder prefix on file names, joints in another order and spelling."""
    sel = json.loads(selection_json.read_text())
    order = np.random.default_rng(0).permutation(LSP.n_joints)
    names = [LSP.joints[j].replace("_", " ").title() for j in order]  # "Right Ankle", ...
    images, anns = [], []
    for k, (im, pre) in enumerate(zip(sel["images"], sel["annotations"], strict=True)):
        i = world["pool_names"].index(im["file_name"])
        images.append({"id": 100 + k, "file_name": "task_1/" + im["file_name"]})
        anns.append({"id": 500 + k, "image_id": 100 + k, "category_id": 7, "bbox": pre["bbox"],
                     "keypoints": truth_keypoints(world["pool_data"], i, order)})  # fmt: skip
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": 7, "name": "person", "keypoints": names}]}  # fmt: skip
    returned_json.write_text(json.dumps(doc))


def test_select_annotate_import_retrain_select(world, tmp_path):
    first = _select(world, world["labelled"], world["checkpoint"], tmp_path / "sel1")
    assert [int(r["rank"]) for r in first] == [1, 2, 3, 4, 5, 6]
    assert {"neighbour_1", "p_1", "neighbour_3", "p_3"} <= set(first[0])
    p = np.array([[float(r[f"p_{k}"]) for k in (1, 2, 3)] for r in first])
    assert np.all(p >= 0) and np.all(p <= 1) and np.all(np.diff(p, axis=1) <= 1e-12)
    scores = [float(r["score"]) for r in first]
    assert scores == sorted(scores, reverse=True)
    assert (tmp_path / "sel1" / "contact_sheet.png").stat().st_size > 5000
    sel = read_coco(tmp_path / "sel1" / "selection_coco.json", require_keypoints=False)
    assert [im["file_name"] for im in sel.images] == [r["image"] for r in first]
    assert all(a["num_keypoints"] == 14 for a in sel.annotations)  # predicted pre-annotations

    annotate(world, tmp_path / "sel1" / "selection_coco.json", tmp_path / "returned.json")
    merged = tmp_path / "merged" / "labelled2.json"
    result = CliRunner().invoke(app, [
        "import", "--labelled", str(world["labelled"]), "--annotations",
        str(tmp_path / "returned.json"), "--selection", str(tmp_path / "sel1"),
        "--out", str(merged)])  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    doc = read_coco(merged)
    assert len(doc.images) == 22 and len(doc.annotations) == 22
    from eglpp.practitioner.coco import coco_to_annotations

    ann = coco_to_annotations(doc)
    assert all(p.is_file() for p in ann.image_paths)
    for k, row in enumerate(first):  # the merged joints are the ground truth, in our order
        i = world["pool_names"].index(row["image"])
        truth = np.asarray(truth_keypoints(world["pool_data"], i)).reshape(14, 3)
        np.testing.assert_allclose(ann.joints[16 + k], truth[:, :2], atol=0.01)
        np.testing.assert_array_equal(ann.visible[16 + k], truth[:, 2] > 0)

    checkpoint2 = train_tiny(merged, tmp_path / "model2.pt", seed=1)
    second = _select(world, merged, checkpoint2, tmp_path / "sel2")
    assert len(second) == 6
    assert not {r["image"] for r in first} & {r["image"] for r in second}
    summary = json.loads((tmp_path / "sel2" / "summary.json").read_text())
    assert summary["n_candidates"] == 34 and summary["n_labelled"] == 22


@pytest.mark.parametrize("strategy", ["random", "coreset", "multipeak"])
def test_other_strategies(world, tmp_path, strategy):
    rows = _select(world, world["labelled"], world["checkpoint"], tmp_path, 5,
                   ["--strategy", strategy, "--pre-annotate", "empty"])  # fmt: skip
    assert len(rows) == 5 and len({r["image"] for r in rows}) == 5
    assert "nearest_1" in rows[0] and float(rows[0]["distance_1"]) >= 0
    sel = json.loads((tmp_path / "selection_coco.json").read_text())
    assert all(a["num_keypoints"] == 0 for a in sel["annotations"])


def test_eglpp_train_reads_a_coco_labelled_set(world, tmp_path):
    """`eglpp train merged.json` retrains from what `eglpp import` writes (COCO keypoints)."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "eglpp.cli", "train", str(world["labelled"]), "--stacks", "1",
         "--channels", "8", "--depth", "2", "--input-size", "32", "--epochs", "1",
         "--val-fraction", "0", "--threads", "1", "--no-progress", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["n_train"] + summary["n_test"] == 16 and summary["n_test"] == 2
    assert (tmp_path / "model.pt").is_file()
