import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from eglpp.io import StateFileError
from eglpp.pose import train as train_module
from eglpp.pose.checkpoint import load_checkpoint, load_model, save_checkpoint
from eglpp.pose.heatmaps import flip_joints
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import evaluate, predict
from eglpp.pose.skeleton import LSP, Skeleton
from eglpp.pose.train import TrainConfig, fit


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on shared, busy cores two OpenMP threads run 10-20× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TWO = Skeleton("two", ("left_shoulder", "right_hip"), ((0, 1),), ((0, 1),))


class Dots(Dataset):
    """Random dim images with a bright 3×3 dot at each joint, joint j drawn in channel j % 3."""

    def __init__(self, n, skeleton=TWO, size=32, seed=0, mirror=False):
        rng = np.random.default_rng(seed)
        J = skeleton.n_joints
        self.skeleton, self.input_size = skeleton, size
        self.joints = rng.uniform(3, size - 4, (n, J, 2)).round().astype(np.float32)
        self.images = rng.uniform(0, 0.2, (n, 3, size, size)).astype(np.float32)
        for i in range(n):
            for j in range(J):
                x, y = self.joints[i, j].astype(int)
                self.images[i, j % 3, y - 1 : y + 2, x - 1 : x + 2] = 1.0
        if mirror:  # the same scenes, mirrored, with left/right joints swapped
            self.images = self.images[..., ::-1].copy()
            perm = skeleton.flip_permutation()
            self.joints = flip_joints(torch.from_numpy(self.joints), size, perm).numpy()

    def __len__(self):
        return len(self.joints)

    def __getitem__(self, i):
        return {
            "image": torch.from_numpy(self.images[i]),
            "joints": torch.from_numpy(self.joints[i]),
            "visible": torch.ones(self.skeleton.n_joints, dtype=torch.bool),
            "index": torch.tensor(i),
            "head_size": torch.tensor(float("nan")),
        }


def _model(n_joints=2, seed=0, **kw):
    cfg = dict(n_stacks=1, channels=16, depth=1, n_joints=n_joints)
    cfg.update(kw)
    return StackedHourglass(HourglassConfig(**cfg)).reset_parameters(
        torch.Generator().manual_seed(seed)
    )


FAST = TrainConfig(epochs=1, batch_size=16, lr=2e-3, optimizer="adam")


def test_one_epoch_smoke_lsp_skeleton(tmp_path):
    data = Dots(32, skeleton=LSP)
    model = _model(n_joints=14)
    lines = []
    result = fit(
        model,
        data,
        FAST,
        seed=0,
        progress=True,
        checkpoint_path=tmp_path / "m.pt",
        log=lines.append,
    )
    assert len(lines) == 1 and lines[0].startswith("epoch 0, loss ")
    assert len(result.history) == 1 and result.best_epoch == 0
    assert math.isfinite(result.history[0]["loss"]) and result.n_train == 32
    scores = evaluate(model, Dots(8, skeleton=LSP, seed=1))
    assert scores["metric"] == "PCK@0.2" and scores["n"] == 8
    assert set(scores["per_joint"]) == set(LSP.joints) and 0 <= scores["mean"] <= 1
    assert (tmp_path / "m.pt").is_file()


def test_fit_learns_dot_positions():
    test = Dots(32, seed=9)
    model = _model()
    before = np.abs(predict(model, test).joints - test.joints).mean()
    config = TrainConfig(epochs=6, batch_size=16, lr=2e-3, optimizer="adam", schedule="cosine")
    result = fit(model, Dots(128), config, seed=0, progress=False)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.2 * losses[0]
    after = np.abs(predict(model, test).joints - test.joints).mean()
    assert before > 5 and after < 2.5
    assert evaluate(model, test, alpha=0.2)["mean"] > 0.4
    assert result.history[-1]["lr"] < 2e-3  # the cosine schedule decays


def test_fit_is_deterministic_from_seed():
    def weights(seed):
        model = _model()
        config = TrainConfig(epochs=1, batch_size=8, optimizer="rmsprop", val_fraction=0.25)
        fit(model, Dots(32), config, seed=seed, progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    a, b, c = weights(1), weights(1), weights(2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_best_validation_checkpoint_is_kept(tmp_path):
    model, val = _model(), Dots(16, seed=3)
    config = TrainConfig(epochs=3, batch_size=16, lr=2e-3, optimizer="adam", alpha=0.3)
    path = tmp_path / "best.pt"
    lines = []
    result = fit(model, Dots(64), config, val_set=val, seed=0, progress=False,
                 checkpoint_path=path, log=lines.append)  # fmt: skip
    scores = [h["val_pck"] for h in result.history]
    assert f"val_pck {100 * scores[0]:.2f} %" in lines[0], "logged in percent, as tables show it"
    assert result.best_epoch == int(np.argmax(scores)) and result.best_metric == max(scores)
    assert evaluate(model, val, alpha=0.3)["mean"] == pytest.approx(result.best_metric)
    restored = load_model(path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value)


def test_the_best_epoch_not_the_last_is_kept_by_construction(tmp_path, monkeypatch):
    """Validation scores scripted 0.2, 0.5, 0.1: the middle epoch is the best whatever training
    reached (a real model's scores may rise every epoch, and then the last is also the best);
    the model ends with, and the checkpoint holds, the weights after that epoch: those of the
    same fit stopped there (constant learning rate, same seed)."""
    script = iter([0.2, 0.5, 0.1])
    monkeypatch.setattr(train_module, "_validate", lambda *a: next(script))
    config = TrainConfig(epochs=3, batch_size=16, lr=2e-3, optimizer="adam")
    model, path, lines = _model(), tmp_path / "best.pt", []
    result = fit(model, Dots(64), config, val_set=Dots(16, seed=3), seed=0, progress=False,
                 checkpoint_path=path, log=lines.append)  # fmt: skip
    assert [h["val_pck"] for h in result.history] == [0.2, 0.5, 0.1]
    assert (result.best_epoch, result.best_metric) == (1, 0.5) and "val_pck 50.00 %" in lines[1]
    stopped = _model()
    fit(stopped, Dots(64), replace(config, epochs=2), seed=0, progress=False)
    for key, value in stopped.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
        torch.testing.assert_close(load_model(path).state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_of_another_architecture_raises(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _model(), extra={"epoch": 3})
    assert load_checkpoint(path, _model(seed=5)) == {"epoch": 3}
    with pytest.raises(ValueError, match="channels: checkpoint 16, model 32"):
        load_checkpoint(path, _model(channels=32))
    with pytest.raises(ValueError, match="no aux"):
        load_checkpoint(path, _model(), aux=nn.Linear(2, 1))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(StateFileError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")


class LossHead(nn.Module):
    """A minimal loss-prediction head: pooled features -> predicted loss, MSE to the real one."""

    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Linear(sum(channels), 1)
        self.epochs, self.seen = [], []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def predict(self, features):
        pooled = torch.cat([f.detach().mean(dim=(-2, -1)) for f in features], dim=1)
        return self.fc(pooled)[:, 0]  # (B,)

    def forward(self, features, per_example_loss):
        self.seen.append((tuple(f.shape for f in features), tuple(per_example_loss.shape)))
        return (self.predict(features) - per_example_loss.detach()).square().mean()


def test_aux_module_is_trained_jointly_and_predicts():
    model = _model(depth=2)
    head = LossHead(model.feature_channels())
    before = head.fc.weight.detach().clone()
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-3, optimizer="adam")
    fit(model, Dots(16), config, seed=0, aux=head, progress=False)
    assert head.epochs == [0, 1]
    assert head.seen[0] == (((8, 16, 8, 8), (8, 16, 4, 4)), (8,))
    assert not torch.equal(head.fc.weight, before)
    preds = predict(model, Dots(5), aux=head, return_embeddings=True, return_heatmaps=True)
    assert preds.aux.shape == (5,) and preds.embeddings.shape == (5, 16)
    assert preds.heatmaps.shape == (5, 2, 8, 8)
    np.testing.assert_array_equal(preds.indices, np.arange(5))


def test_flip_test_is_mirror_equivariant():
    model = _model(n_joints=14, seed=1)
    fit(model, Dots(16, skeleton=LSP), FAST, seed=0, progress=False)
    plain = predict(model, Dots(6, skeleton=LSP, seed=4), flip_test=True)
    mirrored = predict(model, Dots(6, skeleton=LSP, seed=4, mirror=True), flip_test=True)
    expected = flip_joints(torch.from_numpy(plain.joints), 32, LSP.flip_permutation()).numpy()
    np.testing.assert_allclose(mirrored.joints, expected, atol=1e-4)
    np.testing.assert_allclose(mirrored.maxvals, plain.maxvals[:, LSP.flip_permutation()], 1e-5)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="empty"):
        fit(_model(), Dots(0), FAST, seed=0)
    data = Dots(4)
    data.skeleton = None
    with pytest.raises(TypeError, match="skeleton"):
        fit(_model(), data, FAST, seed=0)
    with pytest.raises(ValueError, match="head boxes"):
        evaluate(_model(), Dots(4), metric="pckh")
    with pytest.raises(ValueError, match="leaves no training"):
        fit(_model(), Dots(1), TrainConfig(val_fraction=0.5), seed=0)


def test_train_command_on_an_lsp_format_folder(tmp_path):
    import json

    import scipy.io
    from PIL import Image
    from typer.testing import CliRunner

    from eglpp.cli import app

    rng = np.random.default_rng(0)
    root, n = tmp_path / "lsp", 8
    (root / "images").mkdir(parents=True)
    xy = rng.uniform(8, 40, (n, 14, 2)) + 1  # 1-based, as MATLAB writes them
    flags = np.zeros((n, 14))
    scipy.io.savemat(
        root / "joints.mat",
        {"joints": np.concatenate([xy, flags[..., None]], 2).transpose(2, 1, 0)},
    )
    for i in range(n):
        pixels = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"im{i + 1:04d}.jpg")
    out = tmp_path / "run"
    args = [
        "train", str(root), "--stacks", "1", "--channels", "16", "--depth", "1",
        "--input-size", "32", "--epochs", "1", "--batch-size", "2", "--val-fraction", "0.25",
        "--threads", "1", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "train.json").read_text())
    assert summary["n_train"] == 3 and summary["n_val"] == 1 and summary["n_test"] == 4
    assert summary["test"]["metric"] == "PCK@0.2" and 0 <= summary["test"]["mean"] <= 1
    assert load_model(out / "model.pt").config.channels == 16
    bad = CliRunner().invoke(app, ["train", "lsp", "--out", str(out)])
    assert bad.exit_code != 0 and "--data-root" in bad.output


LSP_JOINTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "lsp" / "joints.mat"


@pytest.mark.parametrize("poses", [None, LSP_JOINTS])
def test_train_command_on_rendered_people(tmp_path, poses):
    import json

    from typer.testing import CliRunner

    from eglpp.cli import app

    if poses is not None and not poses.is_file():
        pytest.skip(f"real LSP annotations not found at {poses}")
    out = tmp_path / "run"
    args = [
        "train", "synthetic", "--n-train", "8", "--n-test", "4", "--stacks", "1",
        "--channels", "16", "--depth", "1", "--input-size", "32", "--epochs", "1",
        "--batch-size", "4", "--val-fraction", "0", "--threads", "1", "--no-progress",
        "--out", str(out),
    ] + ([] if poses is None else ["--poses", str(poses)])  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "train.json").read_text())
    assert summary["n_train"] == 8 and summary["n_test"] == 4 and summary["n_val"] == 0
    assert 0 <= summary["mean_pose_baseline"] <= 1
    assert "mean-pose baseline" in result.output


def test_keyed_shuffle_trains_by_example_identity_not_position():
    """Common random numbers: with keys, the same examples in another order train the same
    model (the order comes from the keys); without keys the order is positional."""
    from torch.utils.data import Subset

    data = Dots(12, seed=3)
    perm = np.random.default_rng(0).permutation(12)
    shuffled = Subset(data, perm.tolist())
    shuffled.skeleton, shuffled.input_size = data.skeleton, data.input_size
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, optimizer="adam", amp=False)

    def trained(dataset, keys):
        model = StackedHourglass(HourglassConfig(n_stacks=1, channels=8, n_joints=2, depth=1))
        model.reset_parameters(torch.Generator().manual_seed(0))
        fit(model, dataset, cfg, seed=5, progress=False, keys=keys)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    keyed = trained(data, np.arange(12))
    torch.testing.assert_close(trained(shuffled, perm), keyed, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(trained(shuffled, None), trained(data, None), atol=1e-4)
    with pytest.raises(ValueError, match="3 keys for 12 training examples"):
        trained(data, np.arange(3))


def test_warmup_scales_the_first_steps_and_restores_the_schedule():
    from eglpp.pose.train import _warmup

    w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=1.0)
    seen = []
    for step in range(5):
        with _warmup(opt, step, 4):
            seen.append(opt.param_groups[0]["lr"])
        assert opt.param_groups[0]["lr"] == 1.0  # the schedule's own lr, untouched
    assert seen == [0.25, 0.5, 0.75, 1.0, 1.0]
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)
