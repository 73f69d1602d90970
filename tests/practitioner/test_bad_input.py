"""Bad input gives errors that name the file, the entry and what was expected."""

import json

import pytest
import torch
from conftest import SIZE, select_config

from eglpp.io import StateFileError
from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.datasets.base import AnnotationError
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.skeleton import LSP, MPII
from eglpp.practitioner.coco import match_skeleton, read_coco
from eglpp.practitioner.merge import merge_annotations
from eglpp.practitioner.pool import read_pool
from eglpp.practitioner.run import run_select

CONFIG = select_config(budget=3, strategy="random", input_size=SIZE, chunk_size=16)


def _run(world, tmp_path, **kw):
    args = {"checkpoint": world["checkpoint"], "labelled": world["labelled"],
            "pool": world["pool"], "out": tmp_path / "out", "config": CONFIG}  # fmt: skip
    args.update(kw)
    return run_select(**args, progress=False, log=lambda m: None)


def _edit(world, tmp_path, change) -> str:
    doc = json.loads(world["labelled"].read_text())
    change(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def test_coco_missing_keypoints(world, tmp_path):
    def unlabel(doc):
        doc["annotations"][3]["keypoints"] = [0] * 42

    with pytest.raises(AnnotationError, match=r"bad.json: annotations\[3\].*missing keypoints"):
        read_coco(_edit(world, tmp_path, unlabel))

    def drop(doc):
        del doc["annotations"][5]["keypoints"]

    with pytest.raises(AnnotationError, match=r"annotations\[5\].*'keypoints' is missing"):
        read_coco(_edit(world, tmp_path, drop))


def test_coco_wrong_joint_count(world, tmp_path):
    def short(doc):
        doc["annotations"][2]["keypoints"] = doc["annotations"][2]["keypoints"][:39]

    with pytest.raises(AnnotationError, match=r"annotations\[2\].*39 values, expected 3 × 14"):
        read_coco(_edit(world, tmp_path, short))

    def coco17(doc):
        doc["categories"][0]["keypoints"] = ["nose", "left_eye", "right_eye"] + [
            f"kp{i}" for i in range(14)
        ]

    # 17 names of no built-in skeleton: a skeleton of its own, which 14-joint people do not fit
    with pytest.raises(AnnotationError, match=r"annotations\[0\].*42 values, expected 3 × 17"):
        read_coco(_edit(world, tmp_path, coco17))


def test_coco_duplicates_and_unknown_images(world, tmp_path):
    def dup(doc):
        doc["images"][1]["id"] = doc["images"][0]["id"]

    with pytest.raises(AnnotationError, match=r"images\[1\]: duplicate image id 1"):
        read_coco(_edit(world, tmp_path, dup))

    def orphan(doc):
        doc["annotations"][0]["image_id"] = 999

    with pytest.raises(AnnotationError, match="image_id 999 is not in 'images'"):
        read_coco(_edit(world, tmp_path, orphan))


def test_skeleton_matched_by_name_in_any_order():
    names = [n.replace("_", " ").upper() for n in reversed(MPII.joints)]
    skeleton, order = match_skeleton(names, "x.json")
    assert skeleton is MPII and [MPII.joints[k] for k in order] == list(reversed(MPII.joints))
    skeleton, _ = match_skeleton(["r_ankle" if n == "right_ankle" else n for n in LSP.joints], "")
    assert skeleton is LSP


def test_pool_list_errors(world, tmp_path):
    csv = tmp_path / "pool.csv"
    csv.write_text(f"image,x,y,width,height\n{world['pool']}/pool_000.jpg,1,1,0,5\n")
    with pytest.raises(ValueError, match="pool.csv line 2: box .* w, h > 0"):
        read_pool(csv)
    csv.write_text("image\nmissing.jpg\n")  # kept: select skips it (tests/.../test_unreadable.py)
    assert read_pool(csv).paths == [tmp_path / "missing.jpg"]
    listed = tmp_path / "pool.json"
    entries = [{"image": str(world["pool"] / n), "bbox": [2, 2, 20, 28]}
               for n in world["pool_names"][:5]]  # fmt: skip
    listed.write_text(json.dumps(entries))
    pool = read_pool(listed)
    assert len(pool) == 5 and pool.boxes[0].tolist() == [2, 2, 20, 28]
    item = pool.dataset(LSP, SIZE)[0]
    assert item["image"].shape == (3, SIZE, SIZE)


def test_checkpoint_of_another_architecture(world, tmp_path):
    mpii_model = StackedHourglass(HourglassConfig(n_stacks=1, channels=8, depth=2, n_joints=16))
    save_checkpoint(tmp_path / "mpii.pt", mpii_model)
    with pytest.raises(ValueError, match="another architecture.*16 joints.*lsp skeleton \\(14"):
        _run(world, tmp_path, checkpoint=tmp_path / "mpii.pt")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(StateFileError, match="other.pt: not an eglpp hourglass checkpoint"):
        _run(world, tmp_path, checkpoint=tmp_path / "other.pt")


def test_budget_larger_than_pool(world, tmp_path):
    with pytest.raises(ValueError, match=r"budget \(99\) is larger than the unlabelled pool"):
        _run(world, tmp_path, config=select_config(budget=99, strategy="random", input_size=SIZE))


def test_import_rejects_bad_returns(world, tmp_path):
    _run(world, tmp_path)
    sel = json.loads((tmp_path / "out" / "selection_coco.json").read_text())

    def returned(change):
        doc = json.loads(json.dumps(sel))
        for a in doc["annotations"]:
            a["keypoints"] = [v if k % 3 != 2 else 2 for k, v in enumerate(a["keypoints"])]
        change(doc)
        path = tmp_path / "returned.json"
        path.write_text(json.dumps(doc))
        return merge_annotations(world["labelled"], path, tmp_path / "out", tmp_path / "m.json")

    def foreign(doc):
        doc["images"][0]["file_name"] = "holiday.jpg"

    with pytest.raises(AnnotationError, match=r"returned.json: images\[0\] .*'holiday.jpg' is not"):
        returned(foreign)

    def dup(doc):
        doc["images"][1]["id"] = doc["images"][0]["id"]

    with pytest.raises(AnnotationError, match="duplicate image id"):
        returned(dup)

    def twice(doc):
        doc["images"][1]["file_name"] = doc["images"][0]["file_name"]

    with pytest.raises(AnnotationError, match="are the same selected image"):
        returned(twice)

    def untouched(doc):
        doc["annotations"][1]["keypoints"] = [0] * 42

    with pytest.raises(AnnotationError, match=r"annotations\[1\].*missing keypoints"):
        returned(untouched)
    with pytest.raises(AnnotationError, match="3 of 3 returned people are the unchanged"):
        returned(lambda doc: None)  # the pre-annotations as they came (tests/.../test_unchanged)


def test_import_rejects_images_already_labelled(world, tmp_path):
    _run(world, tmp_path)
    sel_path = tmp_path / "out" / "selection_coco.json"
    sel = json.loads(sel_path.read_text())
    sel["images"][0]["eglpp_path"] = str(world["root"] / "labelled_images" / "lab_000.jpg")
    sel_path.write_text(json.dumps(sel))
    for a in sel["annotations"]:
        a["keypoints"] = [v if k % 3 != 2 else 2 for k, v in enumerate(a["keypoints"])]
    (tmp_path / "r.json").write_text(json.dumps(sel))
    with pytest.raises(AnnotationError, match=r"images\[0\] .* already in the labelled set"):
        merge_annotations(world["labelled"], tmp_path / "r.json", sel_path, tmp_path / "m.json")


def test_pool_from_a_coco_file_one_item_per_box(world, tmp_path):
    names = world["pool_names"][:3]
    doc = {"images": [{"id": k, "file_name": str(world["pool"] / n)} for k, n in enumerate(names)],
           "annotations": [{"id": 1, "image_id": 0, "bbox": [1, 1, 10, 20]},
                           {"id": 2, "image_id": 0, "bbox": [5, 5, 20, 20]}]}  # fmt: skip
    (tmp_path / "p.json").write_text(json.dumps(doc))
    pool = read_pool(tmp_path / "p.json")
    assert len(pool) == 4 and pool.keys()[1].endswith("#1")
    assert pool.boxes[1].tolist() == [5, 5, 20, 20] and not any(pool.boxes[2] == pool.boxes[2])


def test_cli_error_is_one_line_exit_2(world, tmp_path):
    import subprocess
    import sys

    bad = {"images": [], "annotations": [], "categories": [{"keypoints": ["a", "A"]}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    cmd = [sys.executable, "-m", "eglpp.cli", "select", "--checkpoint", str(world["checkpoint"]),
           "--labelled", str(tmp_path / "bad.json"), "--pool", str(world["pool"]), "--budget",
           "2", "--out", str(tmp_path / "o"), "--input-size", str(SIZE)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        "error:" in proc.stderr and "bad.json: categories[0]: skeleton 'custom': keypoint names "
        "repeat: A, a" in proc.stderr
    )
