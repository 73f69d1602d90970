"""Bad input through the commands: one line that names the file (or flag) and what is wrong,
exit code 2, no traceback, and nothing trained. One case per kind of bad input:

1. paths and folder layouts  2. files that are not the format  3. wrong content
4. images  5. splits and sizes  6. settings  7. saved state
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from eglpp.cli import main
from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.skeleton import LSP
from eglpp.practitioner.coco import coco_category

RUN = ["run", "--preset", "tiny", "--runs", "1", "--cycles", "1", "--budget", "1",
       "--initial", "2", "--strategies", "random"]  # fmt: skip
N = 8  # people in the LSP fixture: im0001-im0004 train (the pool), im0005-im0008 test


def _jpeg(path: Path, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (120, 60, 200)).save(path)


def _lsp(root: Path, joints: np.ndarray | None = None) -> Path:
    """An LSP folder: joints.mat (3×14×N, 1-based) and N images."""
    rng = np.random.default_rng(0)
    if joints is None:
        joints = np.concatenate([rng.uniform(1, 16, (2, 14, N)), np.zeros((1, 14, N))])
    root.mkdir(parents=True)
    scipy.io.savemat(root / "joints.mat", {"joints": joints})
    for i in range(1, N + 1):
        _jpeg(root / "images" / f"im{i:04d}.jpg")
    return root


def _labelled(path: Path, change) -> Path:
    """A COCO labelled set of 4 people (one image each), edited by ``change``."""
    kp = [v for j in range(14) for v in (4.0 + j % 5, 2.0 + j, 2)]
    doc = {"images": [{"id": i, "file_name": f"img/l{i}.jpg"} for i in range(1, 5)],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "keypoints": list(kp)}
                           for i in range(1, 5)],
           "categories": [coco_category(LSP)]}  # fmt: skip
    for i in range(1, 5):
        _jpeg(path.parent / "img" / f"l{i}.jpg", 32)
    change(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """Every bad input of the cases below, under one folder."""
    b = tmp_path_factory.mktemp("bad")
    (b / "empty").mkdir()
    _lsp(b / "lsp")
    (_lsp(b / "garbage") / "joints.mat").write_bytes(b"not a MATLAB file" * 20)
    _lsp(b / "thirteen", np.zeros((3, 13, N)))
    (_lsp(b / "empty_image") / "images" / "im0008.jpg").write_bytes(b"")
    (_lsp(b / "not_image") / "images" / "im0002.jpg").write_text("<html>404</html>")
    folder = _lsp(b / "folder_image") / "images" / "im0003.jpg"
    folder.unlink()
    folder.mkdir()
    _labelled(
        b / "coco" / "strings.json", lambda d: d["annotations"][2].update(keypoints=["a"] * 42)
    )
    _labelled(b / "coco" / "box.json", lambda d: d["annotations"][1].update(bbox=[1, 1, "w", 9]))
    _labelled(b / "coco" / "id.json", lambda d: d["annotations"][0].update(image_id="1"))
    _labelled(b / "coco" / "good.json", lambda d: None)
    for i in range(3):
        _jpeg(b / "pool" / f"p{i}.jpg", 32)
    (b / "pool.csv").write_bytes(b"image\n\xff\xfe p0.jpg\n")
    (b / "header_only.csv").write_text("a,b,y\n")
    model = StackedHourglass(HourglassConfig(n_stacks=1, channels=8, depth=2))
    save_checkpoint(b / "model.pt", model)
    (b / "train.json").write_text(json.dumps({"options": {"input_size": 32}}))
    entry = {"joints": [[5.0, 5.0]] * 16, "joints_vis": [1] * 16, "center": [8, 8], "scale": 0.1}
    people = [{**entry, "image": f"{i:09d}.jpg"} for i in range(6)]
    (b / "mpii").mkdir()
    (b / "mpii" / "trainval.json").write_text(json.dumps(people))
    (b / "mpii" / "mpii_newell_validation_images.txt").write_text("000000005.jpg\n")
    for p in people:
        _jpeg(b / "mpii" / "images" / p["image"])
    (b / "old_mpii_run").mkdir()  # a run folder started when MPII defaulted to PCK@0.2
    (b / "old_mpii_run" / "config.json").write_text(
        json.dumps({"dataset": "mpii", "data_root": str(b / "mpii"), "metric": "pck", "alpha": 0.2})
    )
    return b


def _select(b: Path, **flags) -> list[str]:
    args = {"checkpoint": b / "model.pt", "labelled": b / "coco" / "good.json", "pool": b / "pool",
            "budget": 1, "out": b / "sel", "strategy": "random"}  # fmt: skip
    args.update(flags)
    return ["select", "--no-progress"] + [x for k, v in args.items() for x in (f"--{k}", str(v))]


CASES = [  # (group, argv given the folder, what the one line says)
    (1, lambda b: RUN + ["--dataset", "lspet", "--data-root", f"{b}/lsp", "--out", f"{b}/o1"],
     r"--data-root .*lsp: no lsp/joints.mat \(dataset 'lspet' expects lsp/ and lspet/"),
    (1, lambda b: RUN + ["--dataset", "lsp", "--data-root", f"{b}/empty", "--out", f"{b}/o2"],
     r"--data-root .*empty: no joints.mat \(dataset 'lsp' expects LSP's joints.mat and images/"),
    (1, lambda b: _select(b, checkpoint=b / "empty" / "model.pt"),  # no train.json there either
     r"--checkpoint .*empty/model.pt: no such file"),
    (2, lambda b: RUN + ["--dataset", "lsp", "--data-root", f"{b}/garbage", "--out", f"{b}/o3"],
     r"garbage/joints.mat: not a readable MATLAB .mat file"),
    (2, lambda b: ["train", f"{b}/garbage/joints.mat"], r"garbage/joints.mat: not a readable MAT"),
    (2, lambda b: _select(b, pool=b / "pool.csv"), r"pool.csv: not a readable CSV pool list"),
    (3, lambda b: RUN + ["--dataset", "lsp", "--data-root", f"{b}/thirteen", "--out", f"{b}/o4"],
     r"thirteen/joints.mat: variable 'joints' has shape \(3, 13, 8\), expected 3×14×N"),
    (3, lambda b: _select(b, labelled=b / "coco" / "strings.json"),
     r"strings.json: annotations\[2\] \(id 3\): 'keypoints' must hold numbers only, found 'a'"),
    (3, lambda b: _select(b, labelled=b / "coco" / "box.json"),
     r"box.json: annotations\[1\] \(id 2\): 'bbox' must hold numbers only, found 'w'"),
    (3, lambda b: _select(b, labelled=b / "coco" / "id.json"),
     r"id.json: annotations\[0\] \(id 1\): field 'image_id' must be an integer, got '1'"),
    (4, lambda b: RUN + ["--dataset", "lsp", "--data-root", f"{b}/empty_image", "--out", f"{b}/o5"],
     r"joints.mat \(test\): 1 image file\(s\) cannot be read, first .*im0008.jpg \(empty\)"),
    (4, lambda b: RUN + ["--dataset", "lsp", "--data-root", f"{b}/not_image", "--out", f"{b}/o6"],
     r"joints.mat \(pool\): 1 image .*im0002.jpg \(not an image PIL can read\)"),
    (4, lambda b: ["train", "lsp", "--data-root", f"{b}/folder_image", "--out", f"{b}/o7"],
     r"joints.mat: 1 image file\(s\) cannot be read, first .*im0003.jpg \(a folder, not a file\)"),
    (5, lambda b: RUN + ["--dataset", "lsp", "--data-root", f"{b}/lsp", "--set", "metric=pckh",
                         "--out", f"{b}/o8"],  # fmt: skip
     r"metric 'pckh' needs head boxes and the test set of dataset 'lsp' has none"),
    (5, lambda b: RUN + ["--dataset", "mpii", "--data-root", f"{b}/mpii", "--out", f"{b}/o9"],
     r"model.n_joints=14 but dataset 'mpii' has 16 joints \(--set model.n_joints=16\)"),
    (5, lambda b: ["regression", "--data", f"{b}/header_only.csv", "--target", "y"],
     r"header_only.csv: no data rows"),
    (6, lambda b: RUN + ["--set", "alpha=-1", "--out", f"{b}/o10"], r"alpha=-1 \(expected > 0\)"),
    (6, lambda b: RUN + ["--set", "metric=map", "--out", f"{b}/o11"], r"metric='map' \(expected"),
    (7, lambda b: RUN + ["--dataset", "mpii", "--data-root", f"{b}/mpii", "--set",
                         "model.n_joints=16", "--out", f"{b}/old_mpii_run"],  # fmt: skip
     r"old_mpii_run holds a run of another config \(differs in: alpha, "
     r"(common_random_numbers, )?metric\)"),
]  # fmt: skip


NAMES = ["lspet-layout", "lsp-layout", "checkpoint", "mat-garbage", "train-mat-garbage",
         "pool-csv-bytes", "joints-13", "coco-strings", "coco-box", "coco-id", "image-empty",
         "image-html", "image-folder", "pckh-no-heads", "mpii-joints", "csv-no-rows",
         "alpha", "metric", "old-mpii-run"]  # fmt: skip


@pytest.mark.parametrize(
    ("group", "argv", "says"), CASES, ids=[f"{c[0]}-{n}" for c, n in zip(CASES, NAMES, strict=True)]
)
def test_bad_input_is_one_line_naming_it(bad, group, argv, says, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["eglpp", *argv(bad)])
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err
    flat = " ".join(line.strip(" │") for line in err.splitlines())  # typer boxes usage errors
    assert re.search(says, flat), err
    if err.startswith("error:"):  # eglpp's own errors: exactly one line
        assert err.count("\n") == 1, err
    args = argv(bad)
    out = Path(args[args.index("--out") + 1]) if "--out" in args else None
    assert out is None or not list(out.glob("run-*")), "nothing may train on bad input"
