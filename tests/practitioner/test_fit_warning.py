"""`eglpp select` says when the checkpoint is no better than the mean-pose baseline."""

from types import SimpleNamespace

import numpy as np
import torch
from conftest import SIZE, TINY, select_config

from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.skeleton import LSP
from eglpp.practitioner.run import labelled_fit, run_select


class _Cache:
    """A LabelledCache stand-in: fixed truth and predictions."""

    def __init__(self, joints, visible, predicted):
        self._truth = (torch.as_tensor(joints), torch.as_tensor(visible))
        self._pred = SimpleNamespace(joints=np.asarray(predicted))

    def truth(self):
        return self._truth

    def predictions(self):
        return self._pred


def test_labelled_fit_against_hand_worked_cases():
    rng = np.random.default_rng(0)
    joints = rng.uniform(0, 32, (6, LSP.n_joints, 2))
    visible = np.ones((6, LSP.n_joints), bool)
    perfect = labelled_fit(_Cache(joints, visible, joints), LSP)
    assert perfect["model"] == 1.0 and perfect["mean_pose"] < 1.0
    average = np.broadcast_to(joints.mean(0), joints.shape)
    same = labelled_fit(_Cache(joints, visible, average), LSP)
    assert same["model"] == same["mean_pose"]  # predicting the mean pose is the baseline
    no_torso = visible.copy()
    no_torso[:, LSP.index("left_shoulder")] = False
    assert labelled_fit(_Cache(joints, no_torso, joints), LSP) is None


def test_select_warns_exactly_when_no_better_than_the_mean_pose(world, tmp_path):
    warnings = []
    config = select_config(budget=3, strategy="random", input_size=SIZE, chunk_size=16)
    summary = run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path, config,
                         progress=False, log=lambda m: None, warn=warnings.append)  # fmt: skip
    fit = summary["labelled_fit"]
    assert fit["metric"] == "PCK@0.2" and 0 <= fit["mean_pose"] <= 1
    said = [w for w in warnings if "mean-pose baseline" in w]
    assert bool(said) == (fit["model"] <= fit["mean_pose"])
    if said:
        assert str(world["checkpoint"]) in said[0] and "Train longer" in said[0]


def test_an_untrained_checkpoint_is_called_undertrained(world, tmp_path):
    fresh = StackedHourglass(TINY).reset_parameters(torch.Generator().manual_seed(5))
    checkpoint = save_checkpoint(tmp_path / "untrained.pt", fresh)
    warnings = []
    config = select_config(budget=3, strategy="random", input_size=SIZE, chunk_size=16)
    summary = run_select(checkpoint, world["labelled"], world["pool"], tmp_path / "o", config,
                         progress=False, log=lambda m: None, warn=warnings.append)  # fmt: skip
    assert summary["labelled_fit"]["model"] < summary["labelled_fit"]["mean_pose"]
    assert any("no better than the mean-pose baseline" in w for w in warnings)
