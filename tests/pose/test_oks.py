"""COCO's OKS-based keypoint AP (eglpp.pose.oks) against pycocotools' COCOeval on the same
predictions, and a hand-worked case."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eglpp.pose.oks import COCO_SIGMAS, keypoint_sigmas, oks, oks_ap
from eglpp.pose.skeleton import COCO17, LSP, skeleton_from_keypoints

pytest.importorskip("pycocotools")  # the [test] extra installs it
from coco_reference import cocoeval_ap  # noqa: E402


@st.composite
def cases(draw):
    """People on 1–4 images, 1–6 keypoints (or COCO's 17), predictions near some of them or
    anywhere, scores with ties."""
    coco = draw(st.booleans())
    J = 17 if coco else draw(st.integers(1, 6))
    floats = st.floats(0.01, 0.12)
    sigmas = keypoint_sigmas(COCO17) if coco else np.array(draw(st.lists(floats, min_size=J,
                                                                         max_size=J)))  # fmt: skip
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_images, G = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    gt = rng.uniform(0, 100, (G, J, 2))
    visible = rng.random((G, J)) < 0.7
    visible[np.arange(G), rng.integers(0, J, G)] = True  # each person has a labelled keypoint
    areas = rng.uniform(20, 4000, G)
    gt_images = rng.integers(0, n_images, G)
    D = draw(st.integers(1, 12))
    near = rng.integers(0, G, D)  # each prediction near one person (or anywhere)
    spread = rng.choice([0.5, 3.0, 10.0, 100.0], D)
    pred = gt[near] + rng.normal(0, 1, (D, J, 2)) * spread[:, None, None]
    pred_images = np.where(rng.random(D) < 0.85, gt_images[near], rng.integers(0, n_images, D))
    scores = rng.integers(0, 4, D) / 4 if draw(st.booleans()) else rng.random(D)
    return dict(pred=pred, scores=scores, pred_images=pred_images, gt=gt, visible=visible,
                areas=areas, gt_images=gt_images, sigmas=sigmas)


def run_oks_ap(case: dict, max_dets: int):
    return oks_ap(case["pred"], case["scores"], case["pred_images"], case["gt"], case["visible"],
                  case["areas"], case["gt_images"], case["sigmas"], max_dets=max_dets)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from([20, 2]))
def test_oks_ap_matches_pycocotools(case, max_dets):
    ours = run_oks_ap(case, max_dets)
    reference = cocoeval_ap(case, max_dets)
    np.testing.assert_allclose(ours.per_threshold, reference, rtol=0, atol=1e-12)
    assert ours.ap == pytest.approx(reference.mean(), abs=1e-12)
    assert (ours.ap50, ours.ap75) == (ours.per_threshold[0], ours.per_threshold[5])


def test_oks_and_ap_by_hand():
    """One keypoint, σ = 0.05 (k = 0.1), area 100: a prediction 1 px off has OKS
    exp(−1 / (2 · 100 · 0.01)) = e^−0.5 ≈ 0.607, so it counts at thresholds 0.50–0.60."""
    gt, vis, area, sigma = np.zeros((1, 1, 2)), np.ones((1, 1), bool), np.array([100.0]), [0.05]
    assert oks(np.array([[[1.0, 0.0]]]), gt, vis, area, sigma)[0, 0] == pytest.approx(
        math.exp(-0.5), rel=1e-12
    )
    # three people on three images; predictions by score: hit, miss (far), hit. Recall
    # 1/3, 1/3, 2/3 with precision 1, 1/2, 2/3; made non-increasing from the right the
    # precision is 1 up to recall 1/3 and 2/3 up to 2/3, 0 beyond: (34 · 1 + 33 · 2/3) / 101.
    gt = np.zeros((3, 1, 2))
    pred = np.array([[[0.0, 0.0]], [[50.0, 0.0]], [[0.0, 0.0]]])
    r = oks_ap(pred, np.array([0.9, 0.8, 0.7]), np.arange(3), gt, np.ones((3, 1), bool),
               np.full(3, 100.0), np.arange(3), np.array(sigma))  # fmt: skip
    assert r.ap == pytest.approx((34 + 33 * 2 / 3) / 101, rel=1e-12)
    np.testing.assert_array_equal(r.per_threshold, r.ap50)  # each OKS is 1 or about 0
    assert r.ap75 == r.ap50 and r.ap == pytest.approx(r.ap50, rel=1e-12)


def test_an_oks_equal_to_the_threshold_counts():
    """Two keypoints, one exact and one far (e^−huge = 0): OKS exactly 0.5, a match at 0.50
    (COCOeval: OKS >= threshold) and at no higher threshold."""
    gt, pred = np.zeros((1, 2, 2)), np.array([[[0.0, 0.0], [1000.0, 0.0]]])
    r = oks_ap(pred, np.ones(1), np.zeros(1), gt, np.ones((1, 2), bool), np.full(1, 100.0),
               np.zeros(1), np.array([0.05, 0.05]))  # fmt: skip
    assert (r.ap50, r.ap75, r.ap) == pytest.approx((1.0, 0.0, 0.1), abs=1e-12)


def test_sigmas_per_skeleton():
    np.testing.assert_array_equal(
        keypoint_sigmas(COCO17), [COCO_SIGMAS[name] for name in COCO17.joints]
    )
    assert keypoint_sigmas(COCO17)[COCO17.index("left_hip")] == 0.107
    assert keypoint_sigmas(LSP) is None  # no standard sigmas: no OKS AP unless given
    paw = skeleton_from_keypoints("animal", ["snout", "left_paw", "right_paw"], ())
    np.testing.assert_array_equal(keypoint_sigmas(paw, [0.03, 0.05, 0.05]), [0.03, 0.05, 0.05])
    with pytest.raises(ValueError, match="need 3 positive numbers, one per keypoint of the animal"):
        keypoint_sigmas(paw, [0.03, 0.05])
    with pytest.raises(ValueError, match="labelled keypoint"):
        oks(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), np.zeros((1, 3), bool), np.ones(1), [1] * 3)
