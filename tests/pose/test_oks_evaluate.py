"""COCO's OKS keypoint AP as ``evaluate`` and ``eglpp evaluate`` report it on a COCO-17 file:
the predictions mapped back to the original images and scored by pycocotools' COCOeval
against the file's own keypoints and areas give the same AP, AP50 and AP75."""


import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.cli.evaluate import oks_text
from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.datasets.base import load_image
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.transforms import crop_and_augment
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import evaluate, predict
from eglpp.pose.oks import keypoint_sigmas, oks
from eglpp.pose.skeleton import COCO17
from eglpp.practitioner.coco import coco_to_annotations, read_coco

pytest.importorskip("pycocotools")
from coco17_people import write_coco17  # noqa: E402
from coco_reference import cocoeval_ap  # noqa: E402

INPUT = 64  # twice the images' side: the crops scale people, and their areas by det(A)
def _mapped(model, ann, doc) -> dict:
    """The model's predictions mapped to the original images, and the file's own people."""
    preds = predict(model, ImagePoseDataset(ann, input_size=INPUT))
    pred = np.empty((len(ann), 17, 2))
    for k in range(len(ann)):
        affine = crop_and_augment(
            load_image(ann.image_paths[k]), ann.joints[k], ann.visible[k], input_size=INPUT,
            flip_permutation=None, center=ann.centers[k], scale=ann.scales[k],
        ).affine  # fmt: skip
        inverse = np.linalg.inv(np.vstack([affine, [0.0, 0.0, 1.0]]))[:2]
        pred[k] = preds.joints[k] @ inverse[:, :2].T + inverse[:, 2]
    kp = np.array([a["keypoints"] for a in doc["annotations"]]).reshape(-1, 17, 3)
    areas = np.array([a.get("area", a["bbox"][2] * a["bbox"][3]) for a in doc["annotations"]])
    rank = {p: r for r, p in enumerate(sorted({str(p) for p in ann.image_paths}))}
    images = np.array([rank[str(p)] for p in ann.image_paths])
    return dict(pred=pred, scores=preds.maxvals.mean(1), pred_images=images, gt=kp[..., :2],
                visible=kp[..., 2] > 0, areas=areas, gt_images=images)  # fmt: skip


def _spread_sigma(case: dict) -> float:
    """The one sigma (all keypoints) at which the people's median OKS with their own
    prediction is 0.725 (bisection; OKS grows with sigma): the OKS then straddle the
    thresholds whatever the untrained model predicts, the median halfway between two (the
    crop's float32 coordinates move an OKS by ~1e-8)."""
    lo, hi = 1e-3, 1e3
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        similarity = oks(case["pred"], case["gt"], case["visible"], case["areas"], [mid] * 17)
        lo, hi = (mid, hi) if np.median(np.diag(similarity)) < 0.725 else (lo, mid)
    return hi


@pytest.fixture
def people(tmp_path):
    path, doc = write_coco17(tmp_path)
    ann = coco_to_annotations(read_coco(path))
    config = HourglassConfig(n_stacks=1, channels=8, depth=2, n_joints=17)
    model = StackedHourglass(config).reset_parameters(torch.Generator().manual_seed(0))
    return path, doc, ann, model


def test_evaluate_reports_cocos_keypoint_ap(people):
    _, doc, ann, model = people
    case = _mapped(model, ann, doc)
    sigma = _spread_sigma(case)
    reference = cocoeval_ap({**case, "sigmas": np.full(17, sigma)}, 20)
    assert 0 < reference.mean() < 1 and reference[0] > reference[-1]  # not a trivial case
    scores = evaluate(model, ImagePoseDataset(ann, input_size=INPUT), oks_sigmas=[sigma] * 17)
    got = scores["oks"]
    assert got["n"] == len(doc["annotations"]) == 11
    assert got["mean"] == pytest.approx(reference.mean(), abs=1e-9)
    assert (got["ap50"], got["ap75"]) == pytest.approx((reference[0], reference[5]), abs=1e-9)
    # COCO-17 without sigmas given: COCO's own
    coco = cocoeval_ap({**case, "sigmas": keypoint_sigmas(COCO17)}, 20)
    assert evaluate(model, ImagePoseDataset(ann, input_size=INPUT))["oks"]["mean"] == (
        pytest.approx(coco.mean(), abs=1e-9)
    )


def test_eglpp_evaluate_prints_it(people, tmp_path):
    path, _, ann, model = people
    checkpoint = save_checkpoint(tmp_path / "model.pt", model)
    want = evaluate(model, ImagePoseDataset(ann, input_size=INPUT))["oks"]
    run = CliRunner().invoke(app, ["evaluate", str(checkpoint), str(path), "--input-size", "64"])
    assert run.exit_code == 0, run.output
    assert oks_text(want) in run.output.splitlines()
    assert want["n"] == 11 and f"{100 * want['mean']:.2f}" in oks_text(want)
    bad = CliRunner().invoke(app, ["evaluate", str(checkpoint), str(path), "--input-size",
                                   "64", "--oks-sigmas", "0.05,0.05"])  # fmt: skip
    assert bad.exit_code != 0
    assert "need 17 positive numbers, one per keypoint of the coco17 skeleton" in str(
        bad.exception
    )
