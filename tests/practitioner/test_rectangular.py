"""Rectangular inputs (``--input-size HxW``), person boxes inside the image, ``--normalize``.

A 256 × 192 (H × W) user network (``tests/foreign/rect_networks.py``) that predicts where it
was fed what: its pre-annotations must land in the original image where the hand-worked crop
says, with the red channel as ``--normalize`` maps it; the boxes eglpp writes lie in the image
and turn back into the crop that was scored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.datasets.transforms import crop_affine, crop_width, person_box
from eglpp.practitioner.coco import bbox_to_crop
from eglpp.practitioner.demo import write_demo_data
from eglpp.practitioner.outputs import original_crop
from eglpp.practitioner.pool import read_pool

FOREIGN = Path(__file__).parents[1] / "foreign"
RED, GREEN, BLUE = 204, 102, 51  # the pool images' colour (PNG: exact)


def _image(path: Path, width: int, height: int) -> Path:
    Image.fromarray(np.full((height, width, 3), (RED, GREEN, BLUE), np.uint8)).save(path)
    return path


def _affine_of_box(bbox, size, input_size) -> np.ndarray:
    """The crop an annotation tool's box gives back (as eglpp import then train read it)."""
    center, scale = bbox_to_crop(bbox)
    center, extent = person_box(np.zeros((1, 2)), np.zeros(1, bool), size, center=center,
                                scale=scale)  # fmt: skip
    return crop_affine(center, crop_width(extent, input_size), input_size)


@pytest.mark.parametrize("input_size", [64, (256, 192)])
def test_boxes_lie_in_the_image_and_turn_back_into_the_crop(tmp_path, input_size):
    _image(tmp_path / "wide.png", 160, 96)
    pool = read_pool(tmp_path)
    affine, bbox, size = original_crop(pool, 0, input_size, 1.25)
    # the whole 160 × 96 image, its middle 1/1.25 the box (was [16, -16, 128, 128])
    np.testing.assert_allclose(bbox, [16.0, 9.6, 128.0, 76.8])
    np.testing.assert_allclose(_affine_of_box(bbox, size, input_size), affine, atol=1e-9)
    (tmp_path / "pool.csv").write_text("image,x,y,width,height\nwide.png,-20,10,60,120\n")
    listed = read_pool(tmp_path / "pool.csv")
    _, clipped, _ = original_crop(listed, 0, input_size, 1.25)
    np.testing.assert_allclose(clipped, [0.0, 10.0, 40.0, 86.0])  # clipped to the image


def _select(tmp_path, demo, normalize, budget=2) -> Path:
    out = tmp_path / f"sel-{normalize}"
    args = ["select", "--model", "rect_networks:probe_net", "--embedding", "features",
            "--labelled", demo["labelled"],
            "--pool", str(tmp_path / "pool"), "--budget", str(budget), "--out", str(out),
            "--input-size", "256x192", "--normalize", normalize, "--strategy", "egl++",
            "--param", "k=2", "--param", "perplexity=1.5", "--sheet-rows", "2",
            "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return out


@pytest.mark.parametrize(
    "normalize, red",
    [("unit", RED / 255), ("imagenet", (RED / 255 - 0.485) / 0.229), ("none", float(RED))],
)
def test_a_256x192_model_is_fed_its_input_and_pre_annotated_in_the_image(
    tmp_path, monkeypatch, normalize, red
):
    monkeypatch.chdir(FOREIGN)  # PKG.MODULE is imported from the current folder
    monkeypatch.syspath_prepend(str(FOREIGN))
    demo = write_demo_data(tmp_path / "demo", n_labelled=4, n_pool=1, size=32, skeleton="coco17")
    (tmp_path / "pool").mkdir()
    _image(tmp_path / "pool" / "a_tall.png", 192, 256)  # the input's own shape: crop = identity
    _image(tmp_path / "pool" / "b_wide.png", 160, 96)  # grown to 160 × 213.3, scaled by 1.2
    out = _select(tmp_path, demo, normalize)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input_size"] == [256, 192]
    assert summary["normalize"]["name"] == normalize
    assert summary["config"]["normalize"] == summary["normalize"]
    doc = json.loads((out / "selection_coco.json").read_text())
    images = {im["id"]: im for im in doc["images"]}
    for ann in doc["annotations"]:
        im = images[ann["image_id"]]
        kp = np.asarray(ann["keypoints"], float).reshape(17, 3)
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= im["width"] + 1e-6 and y + h <= im["height"] + 1e-6
        if im["file_name"] == "a_tall.png":  # identity crop: input px = image px
            np.testing.assert_allclose(kp[:, 0], 60.0 + 10 * red, atol=0.02)
            np.testing.assert_allclose(kp[:, 1], 200.0, atol=0.02)
            np.testing.assert_allclose(ann["bbox"], [19.2, 25.6, 153.6, 204.8], atol=1e-6)
        else:  # y: centre 47.5 + (200 − 127.5) / 1.2 (the red mean there includes black bars)
            assert im["file_name"] == "b_wide.png"
            np.testing.assert_allclose(kp[:, 1], 47.5 + (200.0 - 127.5) / 1.2, atol=0.02)
            np.testing.assert_allclose(ann["bbox"], [16.0, 9.6, 128.0, 76.8], atol=1e-6)
    assert (out / "contact_sheet.png").stat().st_size > 0
    assert sys.modules["rect_networks"].INPUT_HW == (256, 192)


def test_input_size_h_w_as_two_words():
    from eglpp.cli import input_size_pairs

    assert input_size_pairs(["train", "x.json", "--input-size", "256", "192", "--epochs", "2"]) == [
        "train", "x.json", "--input-size", "256x192", "--epochs", "2"]  # fmt: skip
    assert input_size_pairs(["select", "--input-size", "64", "--budget", "5"]) == [
        "select", "--input-size", "64", "--budget", "5"]  # fmt: skip
