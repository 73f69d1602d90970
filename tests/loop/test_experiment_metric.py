"""The experiment's metric follows its dataset: PCKh@0.5 on MPII, PCK@0.2 elsewhere."""

import json
from pathlib import Path

import pytest
from PIL import Image

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
