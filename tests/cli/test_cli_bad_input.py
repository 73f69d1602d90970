"""Bad input through the commands: one line that names the file (or flag) and what is wrong,
exit code 2, no traceback, and nothing trained. The case ids start with issue 11's group:

2. ``eglpp train PATH`` guessing the format  3. a checkpoint whose config does not fit its
weights  4. messages with their context (file, field, flag)  5. garbage no longer accepted
silently  6. earlier results kept (another config, a folder in use); ``more-``: the other kinds
tried on the way (folder layouts, images, splits, settings, saved state). Group 1 (output paths)
is ``test_cli_out_paths.py``; group 7 (numerics) are library errors, tested beside their
functions.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
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
    _more(b)
    return b


def _more(b: Path) -> None:
    """The bad inputs of groups 2-6."""
    good = scipy.io.loadmat(b / "lsp" / "joints.mat")["joints"]
    scipy.io.savemat(b / "whole.mat", {"joints": good})
    (b / "truncated.mat").write_bytes((b / "whole.mat").read_bytes()[:200])
    (b / "notes.txt").write_text("joints: see the spreadsheet\n")
    for name, change in (("wide", {"channels": 16}), ("zero", {"n_stacks": 0})):
        payload = torch.load(b / "model.pt", weights_only=True)
        payload["config"].update(change)
        (b / name).mkdir()
        torch.save(payload, b / name / "model.pt")
        (b / name / "train.json").write_text((b / "train.json").read_text())
    (b / "run_x").mkdir()
    results = {"task": "t", "metric": "rmse", "higher_is_better": False, "n_labelled": [2, 3],
               "scores": {"egl": [[1.0, "x"]]}, "config": {}}  # fmt: skip
    (b / "run_x" / "results.json").write_text(json.dumps(results))
    (b / "constant.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},5\n" for i in range(40)))
    far = good.copy()
    far[0, 3, 2] = 900.0  # x of the right hip: 900 px in a 16-px image
    _lsp(b / "far", far)
    _labelled(
        b / "coco" / "far.json", lambda d: d["annotations"][1]["keypoints"].__setitem__(4, -80)
    )
    (b / "other_config").mkdir()
    (b / "other_config" / "results.json").write_text(json.dumps({"config": {"family": "gp"}}))
    (b / "in_use").mkdir()  # locked by this very process, which runs
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": 0}
    (b / "in_use" / ".eglpp.lock").write_text(json.dumps(holder))
    selection = {"images": [{"id": 1, "file_name": "p0.jpg", "width": 32, "height": 32,
                             "eglpp_path": str(b / "pool" / "p0.jpg")}],
                 "annotations": [], "categories": [coco_category(LSP)]}  # fmt: skip
    (b / "sel_done").mkdir()
    (b / "sel_done" / "selection_coco.json").write_text(json.dumps(selection))
    kp = [v for j in range(14) for v in (10.0 + j, 400.0 if j == 9 else 5.0 + j, 2)]
    returned = {**selection, "annotations": [{"id": 1, "image_id": 1, "keypoints": kp}]}
    (b / "returned.json").write_text(json.dumps(returned))


def _on(b: Path, dataset: str, root: str, *extra: str) -> list[str]:
    """``eglpp run`` (tiny) on ``--dataset dataset --data-root b/root``, its own ``--out``."""
    return RUN + ["--dataset", dataset, "--data-root", f"{b}/{root}", *extra,
                  "--out", f"{b}/out_{root}_{zlib.crc32(' '.join(extra).encode())}"]  # fmt: skip


def _select(b: Path, **flags) -> list[str]:
    args = {"checkpoint": b / "model.pt", "labelled": b / "coco" / "good.json", "pool": b / "pool",
            "budget": 1, "out": b / "sel", "strategy": "random"}  # fmt: skip
    args.update(flags)
    return ["select", "--no-progress"] + [x for k, v in args.items() for x in (f"--{k}", str(v))]


CASES = [  # (id, argv given the folder, what the one line says)
    ("2-train-random-bytes", lambda b: ["train", f"{b}/garbage/joints.mat"],
     r"garbage/joints.mat: not a readable MATLAB .mat file"),
    ("2-train-truncated", lambda b: ["train", f"{b}/truncated.mat"],
     r"truncated.mat: not a readable MATLAB .mat file"),
    ("2-train-text", lambda b: ["train", f"{b}/notes.txt"],
     r"notes.txt: not a readable MATLAB .mat file"),
    ("3-weights-other-shape", lambda b: _select(b, checkpoint=b / "wide" / "model.pt"),
     r"wide/model.pt: the model weights do not fit the architecture stored with them \(size"),
    ("3-config-invalid", lambda b: _select(b, checkpoint=b / "zero" / "model.pt"),
     r"zero/model.pt: stored config is not a HourglassConfig \(HourglassConfig.n_stacks"),
    ("4-results-score-string", lambda b: ["report", f"{b}/run_x"],
     r"run_x/results.json: scores\['egl'\]\[0\]\[1\] is 'x', not a number"),
    ("4-coco-keypoint-string", lambda b: _select(b, labelled=b / "coco" / "strings.json"),
     r"strings.json: annotations\[2\] \(id 3\): 'keypoints' must hold numbers only, found 'a'"),
    ("4-coco-box-string", lambda b: _select(b, labelled=b / "coco" / "box.json"),
     r"box.json: annotations\[1\] \(id 2\): 'bbox' must hold numbers only, found 'w'"),
    ("4-coco-id-type", lambda b: _select(b, labelled=b / "coco" / "id.json"),
     r"id.json: annotations\[0\] \(id 1\): field 'image_id' must be an integer, got '1'"),
    ("4-train-flag-name", lambda b: ["train", "synthetic", "--n-train", "0"],
     r"Invalid value for --n-train: must be >= 1, got 0"),
    ("5-constant-target", lambda b: ["regression", "--data", f"{b}/constant.csv", "--target", "y"],
     r"constant.csv: target column 'y' is constant \(5 in every row\)"),
    ("5-max-rows-0", lambda b: ["regression", "--dataset", "engel", "--max-rows", "0"],
     r"max_rows must be at least 1 \(None: every row\), got 0"),
    ("5-train-far-joints", lambda b: ["train", "lsp", "--data-root", f"{b}/far"],
     r"far/joints.mat: 1 annotated joint\(s\) of 1 people lie far outside their image .* first "
     r"person 2: left_hip at \(899.0, .*\) in a 16×16 image"),
    ("5-run-far-joints", lambda b: _on(b, "lsp", "far"), r"far/joints.mat: 1 annotated joint"),
    ("5-select-far-joints", lambda b: _select(b, labelled=b / "coco" / "far.json"),
     r"far.json: 1 annotated joint.* first annotations\[1\] \(image img/l2.jpg\): "
     r"right_knee at \(5.0, -80.0\) in a 32×32 image"),
    ("5-import-far-joints", lambda b: ["import", "--labelled", f"{b}/coco/good.json",
                                       "--annotations", f"{b}/returned.json", "--selection",
                                       f"{b}/sel_done", "--out", f"{b}/merged.json"],
     r"returned.json: 1 annotated joint.* annotations\[0\] \(image p0.jpg\): left_shoulder "
     r"at \(19.0, 400.0\) in a 32×32 image"),
    ("6-regression-other-config", lambda b: ["regression", "--dataset", "engel", "--out",
                                             f"{b}/other_config"],
     r"other_config holds results of another configuration \(results.json differs in: .*family"),
    ("6-folder-in-use", lambda b: ["regression", "--dataset", "engel", "--out", f"{b}/in_use"],
     rf"in_use is in use by process {os.getpid()} on .*; wait for it to end, or delete"),
    ("more-lspet-layout", lambda b: _on(b, "lspet", "lsp"),
     r"--data-root .*lsp: no lsp/joints.mat \(dataset 'lspet' expects lsp/ and lspet/"),
    ("more-lsp-layout", lambda b: _on(b, "lsp", "empty"),
     r"--data-root .*empty: no joints.mat \(dataset 'lsp' expects LSP's joints.mat and images/"),
    ("more-checkpoint-missing", lambda b: _select(b, checkpoint=b / "empty" / "model.pt"),
     r"--checkpoint .*empty/model.pt: no such file"),  # no train.json there either
    ("more-mat-garbage", lambda b: _on(b, "lsp", "garbage"),
     r"garbage/joints.mat: not a readable MATLAB .mat file"),
    ("more-pool-csv-bytes", lambda b: _select(b, pool=b / "pool.csv"),
     r"pool.csv: not a readable CSV pool list"),
    ("more-joints-13", lambda b: _on(b, "lsp", "thirteen"),
     r"thirteen/joints.mat: variable 'joints' has shape \(3, 13, 8\), expected 3×14×N"),
    ("more-image-empty", lambda b: _on(b, "lsp", "empty_image"),
     r"joints.mat \(test\): 1 image file\(s\) cannot be read, first .*im0008.jpg \(empty\)"),
    ("more-image-html", lambda b: _on(b, "lsp", "not_image"),
     r"joints.mat \(pool\): 1 image .*im0002.jpg \(not an image PIL can read\)"),
    ("more-image-folder", lambda b: ["train", "lsp", "--data-root", f"{b}/folder_image"],
     r"joints.mat: 1 image file\(s\) cannot be read, first .*im0003.jpg \(a folder, not a file\)"),
    ("more-pckh-no-heads", lambda b: _on(b, "lsp", "lsp", "--set", "metric=pckh"),
     r"metric 'pckh' needs head boxes and the test set of dataset 'lsp' has none"),
    ("more-lsp-joints", lambda b: _on(b, "lsp", "lsp", "--set", "model.n_joints=16"),
     r"model.n_joints=16 but dataset 'lsp' has 14 joints \(--set model.n_joints=14\)"),
    ("more-csv-no-rows", lambda b: ["regression", "--data", f"{b}/header_only.csv", "--target",
                                    "y"],
     r"header_only.csv: no data rows"),
    ("more-alpha", lambda b: RUN + ["--set", "alpha=-1", "--out", f"{b}/o10"],
     r"alpha=-1 \(expected > 0\)"),
    ("more-metric", lambda b: RUN + ["--set", "metric=map", "--out", f"{b}/o11"],
     r"metric='map' \(expected"),
    ("more-old-mpii-run", lambda b: RUN + ["--dataset", "mpii", "--data-root", f"{b}/mpii", "--set",
                                           "model.n_joints=16", "--out", f"{b}/old_mpii_run"],
     r"old_mpii_run holds a run of another config \(differs in: alpha, "
     r"(common_random_numbers, )?metric\)"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_it(bad, argv, says, monkeypatch, capsys):
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
