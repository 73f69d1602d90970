"""``eglpp select --model … --loss PKG.MODULE:FN --sigma S``: the user's loss is the one the
gradient norms differentiate, recorded with σ; a loss that is no scalar is refused by flag."""

import csv
import json
from pathlib import Path

import numpy as np
from conftest import SIZE
from typer.testing import CliRunner

from eglpp.cli import app

FOREIGN = Path(__file__).parents[1] / "foreign"
SB = ["--model", "foreign_networks:simple_baseline", "--embedding", "layer4"]
EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2"]


def _select(world, out, *flags):
    args = ["select", "--labelled", str(world["labelled"]), "--pool", str(world["pool"]),
            "--budget", "40", "--out", str(out), "--input-size", str(SIZE),
            "--chunk-size", "16", "--no-progress", *SB, *EGL, *flags]  # fmt: skip
    return CliRunner().invoke(app, args)


def _scores(out):
    with open(out / "selection.csv") as f:
        return {r["image"]: float(r["score"]) for r in csv.DictReader(f)}


def test_user_loss_and_sigma_are_used_and_recorded(world, tmp_path, monkeypatch):
    monkeypatch.chdir(FOREIGN)
    monkeypatch.syspath_prepend(str(FOREIGN))
    ours = _select(world, tmp_path / "ours")
    theirs = _select(world, tmp_path / "theirs", "--loss", "user_losses:four_times")
    assert ours.exit_code == 0 and theirs.exit_code == 0, (theirs.output, theirs.exception)
    a, b = _scores(tmp_path / "ours"), _scores(tmp_path / "theirs")
    assert a.keys() == b.keys() and len(a) == 40
    names = sorted(a)
    # EGL++'s score is p-weighted *squared* gradient norms: 4 × the loss, 16 × every score
    np.testing.assert_allclose([b[n] for n in names], [16 * a[n] for n in names], rtol=1e-4)
    summary = json.loads((tmp_path / "theirs" / "summary.json").read_text())
    assert summary["loss"] == "user_losses:four_times" and summary["sigma"] == 1.0
    info = json.loads((tmp_path / "theirs" / "selection_coco.json").read_text())["info"]
    assert info["loss"] == "user_losses:four_times"
    assert json.loads((tmp_path / "ours" / "summary.json").read_text())["loss"].startswith("eglpp")

    wide = _select(world, tmp_path / "wide", "--sigma", "2")
    assert wide.exit_code == 0, (wide.output, wide.exception)
    assert json.loads((tmp_path / "wide" / "summary.json").read_text())["sigma"] == 2.0
    c = _scores(tmp_path / "wide")
    assert not np.allclose([c[n] for n in names], [a[n] for n in names], rtol=1e-3)


def test_a_loss_that_is_no_scalar_is_refused(world, tmp_path, monkeypatch):
    monkeypatch.chdir(FOREIGN)
    monkeypatch.syspath_prepend(str(FOREIGN))
    result = _select(world, tmp_path / "x", "--loss", "user_losses:per_joint")
    assert result.exit_code != 0
    assert "--loss user_losses:per_joint: must return the loss of one example as a scalar" in str(
        result.exception
    ) + result.output
    result = _select(world, tmp_path / "y", "--loss", "user_losses:nothing")
    assert "--loss user_losses:nothing: module 'user_losses' has no function 'nothing'" in str(
        result.exception
    ) + result.output
    plain = CliRunner().invoke(app, ["select", "--checkpoint", str(world["checkpoint"]),
                                     "--labelled", str(world["labelled"]), "--pool",
                                     str(world["pool"]), "--budget", "2", "--out",
                                     str(tmp_path / "z"), "--loss",
                                     "user_losses:four_times"])  # fmt: skip
    assert "--loss: applies to --model only" in str(plain.exception) + plain.output


def test_the_no_better_than_mean_pose_warning_speaks_of_the_model_given():
    from types import SimpleNamespace

    import torch

    from eglpp.pose.skeleton import LSP
    from eglpp.practitioner.run import _check_fit

    rng = np.random.default_rng(0)
    joints = rng.uniform(0, 32, (6, LSP.n_joints, 2))
    cache = SimpleNamespace(
        truth=lambda: (torch.as_tensor(joints), torch.ones(6, LSP.n_joints, dtype=torch.bool)),
        predictions=lambda: SimpleNamespace(joints=np.broadcast_to(joints.mean(0), joints.shape)),
    )  # predicts the mean pose: no better than the baseline
    scored = SimpleNamespace(labelled_cache=cache)
    config = SimpleNamespace(input_size=192, metric=None, normalize=None)
    said = []
    _check_fit(scored, LSP, Path("m.pt"), said.append, config)
    assert "eglpp train --epochs" in said[0] and "192×192 (H×W) px RGB in [0, 1] now" in said[0]
    foreign = SimpleNamespace(spec="mynet.models:build")
    rectangle = SimpleNamespace(input_size=(256, 192), metric=None, normalize="imagenet")
    _check_fit(scored, LSP, Path("w.pt"), said.append, rectangle, foreign)
    assert "--model mynet.models:build" in said[1] and "eglpp train" not in said[1]
    assert "256×192 (H×W) px RGB normalised by ImageNet's mean and std" in said[1]
