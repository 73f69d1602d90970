"""MPII loaders: the official nested-struct .mat, the JSON conversion, the Newell split file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from pose_dataset_fixtures import mpii_point, mpii_rect, write_jpeg, write_mpii_mat

from eglpp.pose.datasets import AnnotationError
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.mpii import load_mpii_mat, read_split_file
from eglpp.pose.datasets.mpii_experiment import load_mpii_experiment
from eglpp.pose.datasets.mpii_json import load_mpii_json
from eglpp.pose.skeleton import MPII

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
NEWELL = SHARED / "mpii_newell_validation_images.txt"

# Three annotated people (1-based MATLAB pixels) in the layout of the official release.
FULL = [mpii_point(j, 10.0 + j, 20.0 + 2 * j, 1) for j in range(16)]
PARTIAL = [
    mpii_point(9, 31.0, 12.0, 0),  # occluded head top (int flag)
    mpii_point(12, 33.0, 25.0, "1"),  # the release stores some flags as strings
    mpii_point(13, 44.0, 26.0, "0"),
    mpii_point(0, 35.0, 60.0, np.zeros((0, 0))),  # no flag: counted as not occluded
]
IMAGES = [
    ("000000001.jpg", [mpii_rect(FULL, (18, 35), 0.2, (12, 14, 22, 26)),
                       mpii_rect(PARTIAL, (38, 30), 0.25, (28, 8, 36, 16))], 1),
    ("000000002.jpg", [mpii_rect(FULL[:8], (20, 30), 0.15, (10, 10, 20, 20)),
                       mpii_rect(None, (5, 5), 0.1)], 1),  # second: no points -> skipped
    ("000000003.jpg", [mpii_rect(None, (30, 30), 0.3)], 0),  # a test image: no joints
]  # fmt: skip


def make_mpii(root: Path) -> Path:
    for name, _, _ in IMAGES:
        write_jpeg(root / "images" / name, 64, 64)
    return write_mpii_mat(root / "mpii_human_pose_v1_u12_1.mat", IMAGES, singles=[[2], [1], []])


def as_json(names_people, head: bool) -> list[dict]:
    """The JSON conversion of the fixture's people (raw 1-based values, as converters write)."""
    entries = []
    for name, rect in names_people:
        joints, vis = [[-1.0, -1.0]] * 16, [0] * 16
        for p in rect["annopoints"]["point"][0]:
            joints[p["id"]], vis[p["id"]] = [p["x"], p["y"]], 1
        entry = {
            "image": name,
            "joints": joints,
            "joints_vis": vis,
            "center": [rect["objpos"]["x"], rect["objpos"]["y"]],
            "scale": rect["scale"],
        }
        if head:
            entry["headbox"] = [rect[c] for c in ("x1", "y1", "x2", "y2")]
        entries.append(entry)
    return entries


def people():
    return [(n, r) for n, rects, t in IMAGES if t for r in rects if "annopoints" in r]


def test_official_mat(tmp_path):
    ann = load_mpii_mat(make_mpii(tmp_path))
    assert ann.skeleton is MPII and len(ann) == 3
    assert [p.name for p in ann.image_paths] == ["000000001.jpg"] * 2 + ["000000002.jpg"]
    np.testing.assert_allclose(ann.joints[0, 5], [15.0 - 1, 30.0 - 1])  # 0-based
    assert ann.visible[0].all() and not ann.occluded[0].any()
    assert sorted(np.flatnonzero(ann.visible[1])) == [0, 9, 12, 13]
    assert sorted(np.flatnonzero(ann.occluded[1])) == [9, 13]
    assert np.all(ann.joints[1][~ann.visible[1]] == 0)
    np.testing.assert_allclose(ann.joints[1, 13], [43.0, 25.0])
    assert ann.visible[2].sum() == 8
    # centre moved down by 15·scale and scale enlarged 1.25× (then 0-based)
    np.testing.assert_allclose(ann.centers[0], [18 - 1, 35 + 15 * 0.2 - 1], rtol=1e-6)
    np.testing.assert_allclose(ann.scales, [0.25, 0.3125, 0.1875], rtol=1e-6)
    np.testing.assert_allclose(ann.head_boxes[1], [27, 7, 35, 15])
    raw = load_mpii_mat(tmp_path / "mpii_human_pose_v1_u12_1.mat", adjust_center_scale=False,
                        one_based=False)  # fmt: skip
    np.testing.assert_allclose(raw.centers[1], [38, 30])
    np.testing.assert_allclose(raw.scales, [0.2, 0.25, 0.15], rtol=1e-6)
    single = load_mpii_mat(tmp_path / "mpii_human_pose_v1_u12_1.mat", single_person_only=True)
    np.testing.assert_array_equal(single.joints, ann.joints[1:])


def test_json_matches_the_mat(tmp_path):
    from_mat = load_mpii_mat(make_mpii(tmp_path))
    path = tmp_path / "trainval.json"
    path.write_text(json.dumps(as_json(people(), head=True)))
    from_json = load_mpii_json(path)
    for field in ("joints", "visible", "centers", "scales", "head_boxes"):
        np.testing.assert_allclose(getattr(from_json, field), getattr(from_mat, field), rtol=1e-6)
    assert from_json.image_paths == from_mat.image_paths
    assert not from_json.occluded.any()  # the conversion carries no occlusion flag


def test_json_head_boxes_from_gt_mat_and_unknown_center(tmp_path):
    make_mpii(tmp_path)
    entries = as_json(people(), head=False)
    entries[2]["center"], entries[2]["scale"] = [-1, -1], -1
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(entries))
    assert load_mpii_json(path).head_boxes is None
    boxes = np.array([[[12, 28, 10], [14, 8, 10]], [[22, 36, 20], [26, 16, 20]]], float)
    scipy.io.savemat(tmp_path / "gt_valid.mat", {"headboxes_src": boxes})  # corner × xy × N
    ann = load_mpii_json(path, head_boxes_mat=tmp_path / "gt_valid.mat")
    np.testing.assert_allclose(ann.head_boxes[1], [27, 7, 35, 15])
    assert np.isnan(ann.centers[2]).all() and np.isnan(ann.scales[2])
    item = ImagePoseDataset(ann, input_size=32)[2]  # cropped from the joints' box instead
    assert item["visible"].sum() == 8
    scipy.io.savemat(tmp_path / "gt_short.mat", {"headboxes_src": boxes[:, :, :2]})
    with pytest.raises(AnnotationError, match=r"gt_short\.mat: variable 'headboxes_src'"):
        load_mpii_json(path, head_boxes_mat=tmp_path / "gt_short.mat")


def test_split_file(tmp_path):
    mat = make_mpii(tmp_path)
    split = tmp_path / "valid_images.txt"
    split.write_text("# validation\n000000002.jpg\n000000002.jpg\n\n")
    assert read_split_file(split) == ["000000002.jpg", "000000002.jpg"]
    valid = load_mpii_mat(mat, "valid", valid_images=split)
    train = load_mpii_mat(mat, "train", valid_images=split)
    assert [p.name for p in valid.image_paths] == ["000000002.jpg"]
    assert [p.name for p in train.image_paths] == ["000000001.jpg"] * 2
    path = tmp_path / "trainval.json"
    entries = as_json(people(), head=False)
    path.write_text(json.dumps(entries))
    assert len(load_mpii_json(path, "valid", valid_images=split)) == 1
    for entry, flag in zip(entries, [0, 0, 1], strict=True):
        entry["isValidation"] = flag
    path.write_text(json.dumps(entries))
    assert len(load_mpii_json(path, "train")) == 2  # from the entries' own flags
    split.write_text("000000001.jpg\n000000002.jpg\n")
    with pytest.raises(AnnotationError, match=r"mpii_human_pose_v1_u12_1\.mat: split 'train' is"):
        load_mpii_mat(mat, "train", valid_images=split)
    split.write_text("000000002.jpg\n123.jpg\n")
    with pytest.raises(AnnotationError, match=r"valid_images\.txt: 1 image name.* first 123\.jpg"):
        load_mpii_mat(mat, "valid", valid_images=split)
    with pytest.raises(ValueError, match="needs valid_images"):
        load_mpii_mat(mat, "valid")
    split.write_text("\n# nothing\n")
    with pytest.raises(AnnotationError, match=r"valid_images\.txt: split file names no images"):
        load_mpii_mat(mat, "valid", valid_images=split)


@pytest.mark.skipif(not NEWELL.is_file(), reason="no ../shared/data/mpii_newell_validation_images")
def test_newell_split_file(tmp_path):
    names = read_split_file(NEWELL)
    assert len(names) == 2958 and len(set(names)) == 2729  # people, images
    entry = {"joints": [[5.0, 5.0]] * 16, "joints_vis": [1] * 16, "center": [5, 5], "scale": 1}
    entries = [{**entry, "image": n} for n in names] + [{**entry, "image": "train_only.jpg"}]
    path = tmp_path / "trainval.json"
    path.write_text(json.dumps(entries))
    valid = load_mpii_json(path, "valid", valid_images=NEWELL, check_images=False)
    assert len(valid) == 2958
    assert len(load_mpii_json(path, "train", valid_images=NEWELL, check_images=False)) == 1


def test_bad_mat(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"release\.mat"):
        load_mpii_mat(tmp_path / "release.mat")
    (tmp_path / "release.mat").write_text("{not a mat}")
    with pytest.raises(AnnotationError, match=r"release\.mat: not a readable MATLAB"):
        load_mpii_mat(tmp_path / "release.mat")
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": np.zeros((3, 14, 2))})
    with pytest.raises(AnnotationError, match=r"joints\.mat: no variable 'RELEASE'.*joints"):
        load_mpii_mat(tmp_path / "joints.mat")
    scipy.io.savemat(tmp_path / "partial.mat", {"RELEASE": {"annolist": np.zeros((0, 0))}})
    with pytest.raises(AnnotationError, match=r"partial\.mat: struct 'RELEASE' has no field 'img"):
        load_mpii_mat(tmp_path / "partial.mat")
    bad = [("a.jpg", [mpii_rect([mpii_point(16, 1.0, 2.0, 1)], (1, 1), 1.0)], 1)]
    write_mpii_mat(tmp_path / "bad_id.mat", bad)
    with pytest.raises(AnnotationError, match=r"bad_id\.mat: image a\.jpg person 1: .*point\.id"):
        load_mpii_mat(tmp_path / "bad_id.mat", check_images=False)
    write_mpii_mat(tmp_path / "test_only.mat", [("b.jpg", [mpii_rect(None, (1, 1), 1.0)], 0)])
    with pytest.raises(AnnotationError, match=r"test_only\.mat: no annotated people"):
        load_mpii_mat(tmp_path / "test_only.mat", check_images=False)
    mat = make_mpii(tmp_path / "data")
    (tmp_path / "data" / "images" / "000000002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image file\(s\) missing, first .*02\.jpg"):
        load_mpii_mat(mat)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[{]", r"bad\.json: not valid JSON"),
        ('{"image": "a.jpg"}', r"bad\.json: expected a list of people, got dict"),
        ("[]", r"bad\.json: no annotated people"),
        ('[{"image": "a.jpg", "joints_vis": []}]', r"bad\.json: entry 0: no field 'joints'"),
        ("[3]", r"bad\.json: entry 0: expected an object"),
    ],
)
def test_bad_json_files(tmp_path, content, match):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(AnnotationError, match=match):
        load_mpii_json(tmp_path / "bad.json", check_images=False)


def test_bad_json_fields(tmp_path):
    make_mpii(tmp_path)
    entries = as_json(people(), head=True)
    path = tmp_path / "bad.json"
    for key, value, match in [
        ("joints", [[1.0, 2.0]] * 15, r"entry 1: field 'joints' has shape \(15, 2\), expected"),
        ("joints_vis", [1] * 14, r"entry 1: field 'joints_vis' has shape \(14,\)"),
        ("joints", [["a", "b"]] * 16, r"entry 1: field 'joints' is not numeric"),
        ("center", [1.0, float("nan")], r"entry 1: field 'center' holds non-finite"),
        ("headbox", [1.0, 2.0, 3.0], r"entry 1: field 'headbox' has shape \(3,\)"),
        ("image", 7, r"entry 1: field 'image' must be an image name"),
    ]:
        broken = [dict(e) for e in entries]
        broken[1][key] = value
        path.write_text(json.dumps(broken))
        with pytest.raises(AnnotationError, match=match):
            load_mpii_json(path)
    with pytest.raises(FileNotFoundError, match=r"nothing\.json"):
        load_mpii_json(tmp_path / "nothing.json")


def test_experiment_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="no MPII annotations"):
        load_mpii_experiment(tmp_path)
    make_mpii(tmp_path)  # official .mat at the root, images in root/images
    (tmp_path / "mpii_newell_validation_images.txt").write_text("000000002.jpg\n")
    train, valid = load_mpii_experiment(tmp_path)
    assert (len(train), len(valid)) == (2, 1) and valid.image_paths[0].name == "000000002.jpg"
    entries = as_json(people(), head=False)
    (tmp_path / "annot").mkdir()
    (tmp_path / "annot" / "train.json").write_text(json.dumps(entries[:2]))
    (tmp_path / "annot" / "valid.json").write_text(json.dumps(entries[2:]))
    boxes = np.array([[[10.0], [10.0]], [[20.0], [20.0]]])
    scipy.io.savemat(tmp_path / "annot" / "gt_valid.mat", {"headboxes_src": boxes})
    train, valid = load_mpii_experiment(tmp_path)
    assert (len(train), len(valid)) == (2, 1) and train.head_boxes is None
    np.testing.assert_allclose(valid.head_boxes, [[9, 9, 19, 19]])
