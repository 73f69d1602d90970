"""The README's practitioner block on a COCO-17 demo set (``eglpp demo-data --skeleton coco17``),
trained at a rectangular input with ImageNet normalisation: demo data → train → select →
Label Studio config / COCO → simulated annotation → import → retrain → select again.

The commands are the README's (:mod:`test_readme_loop`'s tiny sizes) with ``--skeleton coco17``
for demo-data, ``--input-size 48x32 --normalize imagenet`` for train; select is given neither
and must take both from what train recorded.
"""

import json
from pathlib import Path

import numpy as np
import torch
from test_readme_loop import readme_commands, tiny
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.skeleton import COCO17
from eglpp.practitioner.demo import write_demo_data

RECTANGLE = ["--input-size", "48x32", "--normalize", "imagenet"]


def _args(command: str, k: int) -> list[str]:
    args = tiny(command)
    if args[0] == "demo-data":
        args += ["--skeleton", "coco17"]
    if args[0] == "train":
        at = args.index("--input-size")
        args = args[:at] + args[at + 2 :] + RECTANGLE
    if args[0] == "select" and k > 3:  # the second round checks its fit with the joints' box
        args += ["--pck-normaliser", "bbox"]
    return args


def _keypoints(path: Path) -> dict:
    doc = json.loads(path.read_text())
    images = {im["id"]: im["file_name"] for im in doc["images"]}
    return {Path(images[a["image_id"]]).name: a for a in doc["annotations"]}, doc


def test_readme_block_on_coco17_at_48x32_imagenet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outputs = []
    for k, command in enumerate(readme_commands()):
        result = CliRunner().invoke(app, _args(command, k))
        assert result.exit_code == 0, f"`{command}` failed:\n{result.output}\n{result.exception}"
        outputs.append(result.output)
    assert "coco17 keypoints" in outputs[0]
    config = CliRunner().invoke(app, ["label-studio-config", "--skeleton", "demo/labelled.json"])
    assert config.exit_code == 0 and all(f'value="{j}"' in config.output for j in COCO17.joints)
    extra = torch.load("demo/model/model.pt", weights_only=True)["extra"]
    assert extra["input_size"] == [48, 32] and extra["normalize"]["name"] == "imagenet"
    train = json.loads(Path("demo/model/train.json").read_text())
    assert train["options"]["input_size"] == [48, 32] and train["normalize"]["name"] == "imagenet"
    first, second = (json.loads(Path(f"demo/sel{i}/summary.json").read_text()) for i in (1, 2))
    for summary in (first, second):  # select fed what train fed, and says so
        assert summary["input_size"] == [48, 32] and summary["normalize"]["name"] == "imagenet"
    assert first["labelled_fit"]["metric"] == "PCK@0.2"
    assert second["labelled_fit"]["metric"] == "PCK-bbox@0.2"
    assert second["n_labelled"] == first["n_labelled"] + 4
    assert not set(first["selected"]) & set(second["selected"])
    selection, doc = _keypoints(Path("demo/sel1/selection_coco.json"))
    assert doc["categories"][0]["keypoints"] == list(COCO17.joints)
    for ann in selection.values():  # a 32 × 32 image: boxes inside it, 17 pre-annotations
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 32 and y + h <= 32
        assert len(ann["keypoints"]) == 3 * 17
    truth, _ = _keypoints(Path("demo/pool_truth.json"))
    merged, merged_doc = _keypoints(Path("demo/labelled2.json"))
    assert merged_doc["categories"][0]["keypoints"] == list(COCO17.joints)
    assert set(selection) <= set(merged)
    for name in selection:  # the annotator's COCO-17 keypoints, merged unchanged
        np.testing.assert_allclose(merged[name]["keypoints"], truth[name]["keypoints"], atol=0.01)


def test_select_pck_normaliser_is_refused_where_it_cannot_be(tmp_path):
    demo = write_demo_data(tmp_path / "demo", n_labelled=2, n_pool=1, size=32)
    doc = json.loads(Path(demo["labelled"]).read_text())
    doc["categories"][0]["keypoints"] = [f"k{j}" for j in range(14)]  # a skeleton of its own
    doc["categories"][0]["name"] = "robot"
    (tmp_path / "demo" / "robot.json").write_text(json.dumps(doc))
    (tmp_path / "model.pt").write_bytes(b"not read: refused before")
    base = ["select", "--checkpoint", str(tmp_path / "model.pt"), "--pool", demo["pool"],
            "--budget", "1", "--input-size", "32", "--no-progress"]  # fmt: skip
    s1, s2 = str(tmp_path / "s1"), str(tmp_path / "s2")
    robot = str(tmp_path / "demo" / "robot.json")
    head = ["--labelled", demo["labelled"], "--out", s1, "--pck-normaliser", "head"]
    head = CliRunner().invoke(app, [*base, *head])
    assert head.exit_code != 0 and "--pck-normaliser" in head.output
    assert "head boxes" in head.output
    torso = ["--labelled", robot, "--out", s2, "--pck-normaliser", "torso"]
    torso = CliRunner().invoke(app, [*base, *torso])
    assert torso.exit_code != 0
    said = str(torso.exception) + torso.output
    assert "--pck-normaliser torso: the robot skeleton has no left_shoulder" in said


def test_coco17_face_points_of_a_hand_worked_person():
    """Neck (10, 20), head top (10, 10): L = 10, down = +y; the left shoulder on the image's
    right (a person facing the camera), so "left" is +x."""
    from eglpp.pose.skeleton import LSP
    from eglpp.practitioner.demo import coco17_of_lsp

    joints = np.zeros((1, 14, 2))
    flags = np.full((1, 14), 2)
    for name, xy in {"neck": (10, 20), "head_top": (10, 10), "left_shoulder": (14, 22),
                     "right_shoulder": (6, 22), "left_wrist": (3, 4)}.items():  # fmt: skip
        joints[0, LSP.index(name)] = xy
    flags[0, LSP.index("neck")] = 1  # occluded: the face points take the smaller flag
    out, out_flags = coco17_of_lsp(joints, flags, size=32)
    expect = {"nose": (10, 13.5), "left_eye": (11.2, 12), "right_eye": (8.8, 12),
              "left_ear": (12.8, 12.5), "right_ear": (7.2, 12.5), "left_wrist": (3, 4),
              "left_shoulder": (14, 22)}  # fmt: skip
    for name, xy in expect.items():
        np.testing.assert_allclose(out[0, COCO17.index(name)], xy, atol=1e-9, err_msg=name)
    assert out_flags[0, COCO17.index("nose")] == 1 and out_flags[0, COCO17.index("left_hip")] == 2
    mirrored = joints.copy()
    mirrored[..., 0] = 20 - mirrored[..., 0]  # seen from behind: left is now -x
    back, _ = coco17_of_lsp(mirrored, flags, size=32)
    np.testing.assert_allclose(back[0, COCO17.index("left_eye")], (20 - 11.2, 12), atol=1e-9)


def test_label_studio_hint_names_the_config_to_make():
    """A project lacking joints: the hint names ``--skeleton coco17`` for a built-in skeleton,
    the COCO file that holds a custom one otherwise (not its name, which the flag refuses)."""
    import pytest

    from eglpp.pose.skeleton import skeleton_from_keypoints
    from eglpp.practitioner.label_studio import LabelStudioError
    from eglpp.practitioner.label_studio_config import project_joints

    project = {"id": 3, "title": "t", "label_config": "<View><KeyPointLabels name='j' "
               "toName='image'><Label value='nose'/></KeyPointLabels></View>"}  # fmt: skip
    with pytest.raises(LabelStudioError, match=r"--skeleton coco17$"):
        project_joints(project, COCO17, Path("sel1/selection_coco.json"))
    robot = skeleton_from_keypoints("robot", ["nose", "k1"], [])
    with pytest.raises(LabelStudioError, match=r"--skeleton sel1/selection_coco.json \(a COCO"):
        project_joints(project, robot, Path("sel1/selection_coco.json"))
