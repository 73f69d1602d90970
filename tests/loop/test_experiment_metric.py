"""The experiment's metric follows its dataset: PCKh@0.5 on MPII, PCK@0.2 elsewhere."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from eglpp.cli import main
from eglpp.experiment.config import ExperimentConfig, config_from_dict, config_to_dict, preset
from eglpp.experiment.loop import run_experiment
from eglpp.experiment.rundir import check_config
from eglpp.io import read_json


@pytest.mark.parametrize(
    ("settings", "metric", "alpha"),
    [
        ({}, "pck", 0.2),
        ({"dataset": "lsp"}, "pck", 0.2),
        ({"dataset": "mpii"}, "pckh", 0.5),
        ({"dataset": "mpii", "alpha": 0.3}, "pckh", 0.3),
        ({"dataset": "mpii", "metric": "pck"}, "pck", 0.2),
        ({"metric": "pckh"}, "pckh", 0.5),  # PCKh's own threshold, not PCK's
    ],
)
def test_resolved_metric(settings, metric, alpha):
    cfg = config_from_dict(settings, base=preset("tiny")).resolved()
    assert (cfg.metric, cfg.alpha) == (metric, alpha)
    assert cfg.model.n_joints == (16 if cfg.dataset == "mpii" else 14)
    assert cfg.resolved() == cfg


def test_a_run_folder_of_the_old_defaults_still_resumes(tmp_path):
    """config.json written when PCK@0.2 was the default everywhere: the same synthetic run."""
    cfg = preset("tiny")
    old = {**config_to_dict(cfg), "metric": "pck", "alpha": 0.2}
    (tmp_path / "config.json").write_text(json.dumps(old))
    check_config(cfg.resolved(), tmp_path)  # no error: nothing differs
    with pytest.raises(ValueError, match=r"invalid experiment config: alpha=0 \(expected > 0\)"):
        ExperimentConfig(alpha=0)


def _jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), (90, 140, 30)).save(path)


def test_mpii_run_reports_pckh(tmp_path, micro_config):
    root = tmp_path / "mpii"
    entry = {"joints": [[10.0 + j, 5.0 + 2 * j] for j in range(16)], "joints_vis": [1] * 16,
             "center": [18, 20], "scale": 0.15, "head_box": [20, 20, 30, 30]}  # fmt: skip
    people = [{**entry, "image": f"{i:09d}.jpg"} for i in range(7)]
    root.mkdir()
    (root / "trainval.json").write_text(json.dumps(people))
    (root / "mpii_newell_validation_images.txt").write_text("000000005.jpg\n000000006.jpg\n")
    for person in people:
        _jpeg(root / "images" / person["image"])
    micro = micro_config(cycles=1, budget=1, initial=2, strategies=["random"])
    micro["model"] = {**micro["model"], "n_joints": 16}
    cfg = config_from_dict({**micro, "dataset": "mpii", "data_root": str(root)}, preset("tiny"))
    results = run_experiment(cfg, tmp_path / "run", log=lambda m: None)
    assert results["metric"] == "PCKh@0.5"
    saved = read_json(tmp_path / "run" / "config.json")
    assert (saved["metric"], saved["alpha"]) == ("pckh", 0.5)
    cycle = read_json(tmp_path / "run" / "run-00" / "random" / "cycle-01" / "metrics.json")
    assert cycle["metric"] == "PCKh@0.5" and cycle["n"] == 2
    run_experiment(cfg, tmp_path / "run", log=lambda m: None)  # resumes: nothing differs


def _struct(records: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    """A 1×K MATLAB struct array for scipy.io.savemat (as the MPII release stores them)."""
    array = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for k, record in enumerate(records):
        for f in fields:
            array[f][0, k] = record[f]
    return array


def _official_mpii(root: Path, names: list[str]) -> None:
    """``mpii_human_pose_v1_u12_1.mat``: one person per image, 16 points, a head box."""
    points = _struct([{"id": j, "x": 10.0 + j, "y": 5.0 + 2 * j, "is_visible": 1}
                      for j in range(16)], ("id", "x", "y", "is_visible"))  # fmt: skip
    rect = {"x1": 20.0, "y1": 20.0, "x2": 30.0, "y2": 30.0, "scale": 0.15,
            "objpos": {"x": 18.0, "y": 20.0}, "annopoints": {"point": points}}  # fmt: skip
    annolist = _struct([{"image": {"name": n}, "annorect": _struct([rect], tuple(rect))}
                        for n in names], ("image", "annorect"))  # fmt: skip
    release = {"annolist": annolist, "img_train": np.ones((1, len(names)))}
    scipy.io.savemat(root / "mpii_human_pose_v1_u12_1.mat", {"RELEASE": release})


@pytest.mark.parametrize("layout", ["official .mat", "annot/*.json + gt_valid.mat"])
def test_eglpp_run_on_mpii_reports_pckh(tmp_path, layout, monkeypatch, capsys):
    """``eglpp run --dataset mpii`` on either MPII format: the paper's PCKh@0.5 with MPII's 16
    joints, neither set by a flag."""
    root = tmp_path / "mpii"
    names = [f"{i:09d}.jpg" for i in range(7)]
    for name in names:
        _jpeg(root / "images" / name)
    if layout == "official .mat":
        _official_mpii(root, names)
        (root / "mpii_newell_validation_images.txt").write_text("\n".join(names[5:]) + "\n")
    else:
        entry = {"joints": [[10.0 + j, 5.0 + 2 * j] for j in range(16)], "joints_vis": [1] * 16,
                 "center": [18, 20], "scale": 0.15}  # fmt: skip
        (root / "annot").mkdir()
        for part, chosen in (("train", names[:5]), ("valid", names[5:])):
            doc = [{**entry, "image": n} for n in chosen]
            (root / "annot" / f"{part}.json").write_text(json.dumps(doc))
        boxes = np.array([[[19.0] * 2, [19.0] * 2], [[29.0] * 2, [29.0] * 2]])  # corner × xy × N
        scipy.io.savemat(root / "annot" / "gt_valid.mat", {"headboxes_src": boxes})
    out = tmp_path / "run"
    argv = ["eglpp", "run", "--preset", "tiny", "--dataset", "mpii", "--data-root", str(root),
            "--runs", "1", "--cycles", "1", "--budget", "1", "--initial", "2", "--strategies",
            "random", "--set", "model.channels=8", "--set",
            "base_train.epochs=1", "--set", "cycle_train.epochs=1", "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 0, capsys.readouterr().err
    results = read_json(out / "results.json")
    assert results["metric"] == "PCKh@0.5" and results["task"] == "pose/mpii"
    saved = read_json(out / "config.json")
    assert (saved["metric"], saved["alpha"], saved["model"]["n_joints"]) == ("pckh", 0.5, 16)
