"""Input sizes (S or H × W) and normalisations: parsing, the formula, the dataset, heatmaps and
the hourglass at H ≠ W, and what a checkpoint records for ``eglpp select``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.datasets.base import PoseAnnotations
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.preprocess import (
    input_hw,
    normalization,
    parse_input_size,
)
from eglpp.pose.heatmaps import decode_heatmaps, target_heatmaps
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.skeleton import LSP
from eglpp.pose.train import fed_inputs
from eglpp.practitioner.settings import checkpoint_settings


def test_input_sizes_parse_and_bad_ones_name_the_flag():
    assert parse_input_size("64") == 64 and parse_input_size("256x192") == (256, 192)
    assert parse_input_size("256 192") == parse_input_size("256,192") == (256, 192)
    assert parse_input_size("128X128") == 128  # a square stays an int: old records compare equal
    assert input_hw(64) == (64, 64) and input_hw([256, 192]) == (256, 192)
    for bad in ("", "256x", "0x64", "a", "1x2x3"):
        with pytest.raises(ValueError, match="--input-size"):
            parse_input_size(bad)
    with pytest.raises(ValueError, match="input_size"):
        input_hw((64, 0))


def test_normalisations_against_a_hand_worked_pixel():
    x = np.array([0.8, 0.4, 0.2], np.float32).reshape(3, 1, 1)
    np.testing.assert_allclose(normalization("unit").apply(x), x)
    np.testing.assert_allclose(normalization("none").apply(x).ravel(), [204.0, 102.0, 51.0],
                               rtol=1e-6)  # fmt: skip
    expected = [(0.8 - 0.485) / 0.229, (0.4 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    np.testing.assert_allclose(normalization("imagenet").apply(x).ravel(), expected, rtol=1e-6)
    custom = normalization("0.5,0.5,0.5/0.25,0.25,0.5")
    np.testing.assert_allclose(custom.apply(x).ravel(), [1.2, -0.4, -0.6], rtol=1e-6)
    for spec in ("imagenet", "none", custom):  # what summary.json / train.json record reads back
        norm = normalization(spec)
        assert normalization(json.loads(json.dumps(norm.record()))) == norm
    for bad in ("imagnet", "0.5,0.5/0.5,0.5", "0.5,0.5,0.5/0,1,1"):
        with pytest.raises(ValueError, match="--normalize"):
            normalization(bad)


def test_dataset_heatmaps_and_hourglass_at_h_not_w(tmp_path):
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[..., 0] = 255
    Image.fromarray(pixels).save(tmp_path / "im.png")
    joints = np.tile([[10.0, 8.0], [50.0, 30.0]], (7, 1))[None]  # (1, 14, 2), box 40 × 22
    ann = PoseAnnotations(LSP, joints, np.ones((1, 14), bool), image_paths=[tmp_path / "im.png"])
    plain = ImagePoseDataset(ann, input_size=(32, 48))[0]
    normed = ImagePoseDataset(ann, input_size=(32, 48), normalize=normalization("imagenet"))[0]
    assert plain["image"].shape == (3, 32, 48)
    expect = (plain["image"] - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor(
        [0.229, 0.224, 0.225])[:, None, None]  # fmt: skip
    torch.testing.assert_close(normed["image"], expect)
    torch.testing.assert_close(normed["joints"], plain["joints"])
    target = target_heatmaps(plain["joints"][None], plain["visible"][None], (32, 48), 1.0, 4)
    assert target.shape == (1, 14, 8, 12)
    coords, _ = decode_heatmaps(target)  # the peaks sit where the joints are (heatmap px)
    np.testing.assert_allclose(coords[0], (plain["joints"] + 0.5) / 4 - 0.5, atol=0.25)
    model = StackedHourglass(HourglassConfig(n_stacks=1, channels=8, depth=2))
    assert model(normed["image"][None]).heatmaps.shape == (1, 1, 14, 8, 12)


def test_a_checkpoint_tells_select_its_input(tmp_path):
    """model.pt records what its training fed (a copy without train.json still tells); an old
    train.json (an int, no normalisation) reads as a square input in [0, 1]."""
    model = StackedHourglass(HourglassConfig(n_stacks=1, channels=8, depth=2))
    ann = PoseAnnotations(LSP, np.zeros((1, 14, 2)), np.ones((1, 14), bool), image_paths=["x"])
    fed = fed_inputs(ImagePoseDataset(ann, input_size=(48, 32), normalize="imagenet"))
    save_checkpoint(tmp_path / "model.pt", model, extra={"epoch": 0, **fed})
    found = checkpoint_settings(tmp_path / "model.pt")
    assert found["input_size"] == [48, 32]
    assert normalization(found["normalize"]) == normalization("imagenet")
    (tmp_path / "train.json").write_text(json.dumps({"options": {"input_size": 64},
                                                     "train": {"sigma": 1.5}}))  # fmt: skip
    old = checkpoint_settings(tmp_path / "model.pt")
    assert old == {"input_size": 64, "sigma": 1.5}
    assert normalization(old.get("normalize")).name == "unit"
