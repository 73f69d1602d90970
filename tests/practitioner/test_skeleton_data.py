"""A skeleton is data: any keypoint set of a COCO file reads, round-trips and flips by name;
PCK's box normaliser and the choice of normaliser per skeleton."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eglpp.pose.datasets.base import AnnotationError
from eglpp.pose.metrics import bbox_size
from eglpp.pose.normalisers import default_metric, metric_normaliser
from eglpp.pose.skeleton import COCO17, LSP, MPII, skeleton_from_keypoints
from eglpp.practitioner.coco import coco_document, coco_to_annotations, keypoint_entry, read_coco

# COCO's published person skeleton (person_keypoints_val2017.json), 1-based.
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7],
                 [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5],
                 [4, 6], [5, 7]]  # fmt: skip


def test_coco17_is_cocos_skeleton():
    assert [[a + 1, b + 1] for a, b in COCO17.limbs] == COCO_SKELETON
    perm = COCO17.flip_permutation()
    for i, name in enumerate(COCO17.joints):  # each joint flips to its mirror by name
        mirror = name.replace("left_", "R").replace("right_", "left_").replace("R", "right_")
        assert COCO17.joints[perm[i]] == mirror
    assert COCO17.has_torso and LSP.has_torso and MPII.has_torso


@st.composite
def coco_docs(draw):
    """A COCO keypoints document with any number of keypoints (some left/right pairs), limbs
    and people."""
    parts = draw(st.lists(st.text("abcdefghij", min_size=1, max_size=5), min_size=1,
                          max_size=12, unique=True))  # fmt: skip
    names, pairs = [], []
    for part in parts:
        if draw(st.booleans()):
            pairs.append((len(names), len(names) + 1))
            names += [f"left_{part}", f"right_{part}"]
        else:
            names.append(f"kp_{part}")
    J = len(names)
    limbs = draw(st.lists(st.tuples(st.integers(1, J), st.integers(1, J)), max_size=2 * J))
    n = draw(st.integers(1, 4))
    coords = draw(st.lists(st.integers(0, 300), min_size=2 * J * n, max_size=2 * J * n))
    flags = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=J * n, max_size=J * n))
    anns = []
    for k in range(n):
        kp = []
        for j in range(J):
            v = flags[k * J + j]
            xy = coords[2 * (k * J + j) : 2 * (k * J + j) + 2] if v else [0, 0]
            kp += [*xy, v]
        anns.append({"id": k + 1, "image_id": 1, "category_id": 3, "keypoints": kp})
    doc = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": anns,
           "categories": [{"id": 3, "name": "beast", "keypoints": names,
                           "skeleton": [list(limb) for limb in limbs]}]}  # fmt: skip
    return doc, names, limbs, pairs


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(coco_docs())
def test_any_keypoint_set_round_trips(tmp_path, case):
    doc, names, limbs, pairs = case
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc))
    coco = read_coco(path, require_keypoints=False)
    sk = coco.skeleton
    assert sk.joints == tuple(names) and sk.name == "beast"
    assert sk.limbs == tuple((a - 1, b - 1) for a, b in limbs)
    assert sorted(sk.flip_pairs) == sorted(pairs)
    ann = coco_to_annotations(coco)
    anns = [keypoint_entry(k + 1, 1, ann.joints[k], np.where(ann.visible[k], np.where(
        ann.occluded[k], 1, 2), 0), None) for k in range(len(ann))]  # fmt: skip
    out = tmp_path / "out.json"
    out.write_text(json.dumps(coco_document(coco.images, anns, sk)))
    again = read_coco(out, require_keypoints=False)
    assert again.skeleton == sk
    for a, b in zip(doc["annotations"], again.annotations, strict=True):
        assert [float(v) for v in a["keypoints"]] == b["keypoints"]


def test_bad_limbs_and_names_are_refused(tmp_path):
    doc = {"images": [], "annotations": [], "categories": [
        {"id": 1, "keypoints": ["a", "b", "c"], "skeleton": [[1, 2], [0, 3]]}]}  # fmt: skip
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"x.json: categories\[0\].skeleton\[1\] .* 1..3"):
        read_coco(path)
    doc["categories"][0].update(keypoints=["Left Paw", "left_paw", "c"], skeleton=[])
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="names repeat: Left Paw, left_paw"):
        read_coco(path)
    doc["categories"][0]["keypoints"] = [*COCO17.joints[:16], "nosetip"]  # one typo
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match="nearly the coco17 skeleton.*'nosetip'"):
        read_coco(path)


def test_bbox_size_against_a_hand_worked_case():
    gt = np.array([[[1.0, 2.0], [4.0, 10.0], [100.0, 100.0]],  # box 3 x 8 (third: unlabelled)
                   [[5.0, 5.0], [5.0, 5.0], [9.0, 6.0]],  # box 4 x 1
                   [[0.0, 0.0], [7.0, 7.0], [3.0, 3.0]]])  # one joint annotated: none  # fmt: skip
    vis = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    np.testing.assert_array_equal(bbox_size(gt, vis), [8.0, 4.0, np.nan])


def test_normaliser_per_skeleton():
    animal = skeleton_from_keypoints("animal", ["snout", "left_paw", "right_paw"])
    gt, vis = np.zeros((1, 3, 2)), np.ones((1, 3), bool)
    assert default_metric(animal) == "pckb" and default_metric(COCO17) == "pck"
    with pytest.raises(ValueError, match="animal skeleton .* use the bbox"):
        metric_normaliser("pck", animal, gt, vis)
    with pytest.raises(ValueError, match="needs head boxes"):
        metric_normaliser("pckh", animal, gt, vis)
    gt = np.zeros((1, 17, 2))
    gt[0, COCO17.index("left_shoulder")] = (3.0, 4.0)
    norm, _ = metric_normaliser("pck", COCO17, gt, np.ones((1, 17), bool))
    np.testing.assert_allclose(norm, [5.0])  # ‖left shoulder − right hip‖
