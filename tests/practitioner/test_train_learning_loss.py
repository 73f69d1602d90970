"""``eglpp train --learning-loss`` makes a checkpoint that ``eglpp select --strategy
learning-loss`` scores with; a checkpoint without the head is refused, saying what works."""

import csv
import json

import numpy as np
import torch
from conftest import SIZE
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.pose.checkpoint import load_checkpoint, load_model
from eglpp.strategies import LearningLoss

TINY = ["--stacks", "1", "--channels", "8", "--depth", "2", "--input-size", str(SIZE),
        "--epochs", "1", "--batch-size", "8", "--val-fraction", "0", "--no-progress"]  # fmt: skip


def _invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _select(world, checkpoint, out):
    return _invoke(["select", "--checkpoint", checkpoint, "--labelled", world["labelled"],
                    "--pool", world["pool"], "--budget", 3, "--out", out, "--input-size", SIZE,
                    "--chunk-size", 16, "--no-progress",
                    "--strategy", "learning-loss"])  # fmt: skip


def test_train_learning_loss_then_select(world, tmp_path):
    result = _invoke(["train", world["labelled"], *TINY, "--learning-loss", "--out",
                      tmp_path / "ll"])  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    checkpoint = tmp_path / "ll" / "model.pt"
    model = load_model(checkpoint)
    head = LearningLoss().auxiliary(model.feature_channels())
    before = [p.clone() for p in head.parameters()]
    load_checkpoint(checkpoint, model, aux=head)  # the head's weights are in the file
    assert any(not torch.equal(a, b) for a, b in zip(before, head.parameters(), strict=True))

    result = _select(world, checkpoint, tmp_path / "sel")
    assert result.exit_code == 0, (result.output, result.exception)
    with open(tmp_path / "sel" / "selection.csv") as f:
        rows = list(csv.DictReader(f))
    scores = [float(r["score"]) for r in rows]
    assert len(rows) == 3 and scores == sorted(scores, reverse=True)
    assert np.isfinite(scores).all()
    summary = json.loads((tmp_path / "sel" / "summary.json").read_text())
    assert summary["strategy"] == "learning-loss"


def test_select_learning_loss_without_the_head_is_refused(world, tmp_path):
    result = _select(world, world["checkpoint"], tmp_path / "sel")
    assert result.exit_code != 0
    message = str(result.exception) + result.output
    assert "eglpp train --learning-loss" in message and "another strategy" in message
    assert not (tmp_path / "sel" / "selection.csv").exists()
