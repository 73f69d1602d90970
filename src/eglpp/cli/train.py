"""``eglpp train``: train a stacked hourglass on a dataset by name or path, evaluate it.

Datasets:

- ``synthetic``: rendered people (``eglpp.pose.datasets.synthetic``); with ``--poses
  joints.mat`` the poses of an LSP/LSPET annotation file are rendered, its first half for
  training and its last half for testing (LSP's official split);
- ``lsp`` / ``lspet`` / ``mpii`` with ``--data-root`` (the official formats), or a path: a
  folder or ``joints.mat`` (LSP 3×14×N or LSPET 14×3×N) or an MPII ``.json``/``.mat`` file.

The output folder receives ``model.pt`` (the kept weights, see ``eglpp.pose.train``) and
``train.json`` (configs, per-epoch history, test scores, the mean-pose baseline where the test
set's joints are known without loading images, timings).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import typer
from torch.utils.data import Dataset

from eglpp.cli.train_choices import chosen_metric, loss_head
from eglpp.devices import check_device
from eglpp.io import atomic_write_json, check_output
from eglpp.pose.datasets import load_lsp, load_lspet
from eglpp.pose.datasets.base import (
    ImagePoseDataset,
    check_image_headers,
    check_joints_inside,
    read_mat,
)
from eglpp.pose.datasets.kinematics import PoseSet, poses_from_joints_mat
from eglpp.pose.datasets.lsp import read_joints_mat, resolve_joints_mat
from eglpp.pose.datasets.mpii import load_mpii_mat
from eglpp.pose.datasets.mpii_json import load_mpii_json
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import dataset_joints, dataset_skeleton, evaluate
from eglpp.pose.metrics import mean_pose
from eglpp.pose.normalisers import METRICS, default_metric
from eglpp.pose.train import TrainConfig, fit
from eglpp.practitioner.labelled import load_labelled

__all__ = ["train", "training_mean_pose"]


def training_mean_pose(train: Dataset) -> np.ndarray:
    """(J, 2) the training set's mean pose in input px (read without augmentation): the
    mean-pose baseline predicts it for every test image."""
    if isinstance(train, ImagePoseDataset) and train.train:
        train = ImagePoseDataset(
            train.annotations, input_size=train.input_size, seed=train.seed, train=False
        )
    return mean_pose(*dataset_joints(train))


def _report(scores: dict, n_test: int, result, epochs: int, out: Path) -> None:
    """Where the model is, its test metric against the mean-pose baseline, and what next."""
    metric, value, base = scores["metric"], 100 * scores["mean"], scores.get("baseline")
    line = f"{metric} on {n_test} test images: {value:.2f} %"
    if base is not None:
        line += "; mean-pose baseline (the training set's average pose for every image) "
        line += f"{100 * base:.2f} %"
    typer.echo(line)
    if base is not None and scores["mean"] <= base:
        typer.secho(
            f"warning: the model is no better than the mean-pose baseline: it has not learnt to "
            f"read the images yet. Train longer (--epochs, {epochs} now) or on more images "
            "before eglpp select: its scores and pre-annotations would be noise.",
            fg="yellow",
            err=True,
        )
    model = out / "model.pt"
    typer.echo(f"model: {model}   (next: eglpp select --checkpoint {model} …)")
    typer.echo(
        f"trained {result.n_train} images × {epochs} epochs in {result.seconds:.0f} s; "
        f"wrote {out / 'train.json'}"
    )


def _synthetic(args: dict) -> tuple[Dataset, None, Dataset, str]:

    render = RenderConfig(size=args["input_size"], domain=args["domain"])
    seed, n_train, n_test = args["seed"], args["n_train"], args["n_test"]
    if args["poses"] is None:
        train = SyntheticPoseDataset(n_train, render, seed=2 * seed)
        return train, None, SyntheticPoseDataset(n_test, render, seed=2 * seed + 1), "pck"
    path = resolve_joints_mat(args["poses"])
    read_joints_mat(path)  # validates the file, errors name it

    poses = poses_from_joints_mat(read_mat(path)["joints"])
    half = len(poses) // 2

    def part(lo: int, hi: int) -> PoseSet:
        return PoseSet(poses=poses.poses[lo:hi], annotated=poses.annotated[lo:hi])

    train = SyntheticPoseDataset(None, render, 2 * seed, part(0, min(half, n_train)))
    test = SyntheticPoseDataset(None, render, 2 * seed + 1, part(half, half + n_test))
    return train, None, test, "pck"


def _real(name: str, root: Path, args: dict) -> tuple[Dataset, Dataset | None, Dataset, str]:

    if name in ("lsp", "lspet"):
        load = load_lsp if name == "lsp" else load_lspet
        train_ann, test_ann, metric = load(root, "train"), load(root, "test"), "pck"
    elif name == "coco":  # e.g. the labelled set merged by `eglpp import`
        ann = load_labelled(root).annotations
        if len(ann) < 2:
            raise typer.BadParameter(f"{root}: {len(ann)} people; need at least 2 to hold one out")
        perm = np.random.default_rng(args["seed"] + 1).permutation(len(ann))
        n_test = max(1, round(0.1 * len(ann)))  # a seeded 10% test split
        train_ann, test_ann = ann.subset(perm[n_test:]), ann.subset(perm[:n_test])
        metric = default_metric(ann.skeleton)  # torso, or the joints' box without one
    elif name == "mpii":
        load = load_mpii_json if root.suffix == ".json" else load_mpii_mat
        if root.is_dir():
            root = root / "mpii_human_pose_v1_u12_1.mat"
        valid = args["valid_images"]
        train_ann = load(root, "train", valid_images=valid)
        test_ann, metric = load(root, "valid", valid_images=valid), "pckh"
    else:
        raise typer.BadParameter(f"unknown dataset {name!r}", param_hint="DATASET")
    size, seed = args["input_size"], args["seed"]
    for ann in (train_ann, test_ann):  # before any training: unreadable images, far-off joints
        sizes = check_image_headers(ann.image_paths, ann.source)
        check_joints_inside(ann, [sizes[p] for p in ann.image_paths])
    val = None
    if args["val_fraction"] > 0:  # an unaugmented validation set, split off by the seed
        perm = np.random.default_rng(seed).permutation(len(train_ann))
        n_val = max(1, round(args["val_fraction"] * len(train_ann)))
        val = ImagePoseDataset(train_ann.subset(perm[:n_val]), input_size=size, seed=seed)
        train_ann = train_ann.subset(perm[n_val:])
    train = ImagePoseDataset(train_ann, input_size=size, seed=seed, train=True)
    return train, val, ImagePoseDataset(test_ann, input_size=size, seed=seed), metric


def _guess(path: Path) -> str:
    """Dataset name of an annotation path: LSP/LSPET by the joints array layout, else MPII."""
    if path.suffix == ".json":
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"{path}: not a readable JSON file ({exc})") from exc
        return "coco" if isinstance(doc, dict) and "categories" in doc else "mpii"
    if path.name.startswith("mpii"):
        return "mpii"
    if path.is_dir() and (path / "mpii_human_pose_v1_u12_1.mat").is_file():
        return "mpii"

    mat = read_mat(resolve_joints_mat(path))
    if "joints" not in mat:
        return "mpii"
    return "lsp" if mat["joints"].shape[0] == 3 else "lspet"


def train(
    dataset: str = typer.Argument(
        "synthetic",
        help="synthetic | lsp | lspet | mpii | a path to annotations (LSP/LSPET joints.mat, "
        "MPII .mat/.json, or COCO keypoints .json: 10% held out as the test set)",
    ),
    data_root: Path | None = typer.Option(None, help="Folder or file of a real dataset."),
    valid_images: Path | None = typer.Option(None, help="MPII: file of validation image names."),
    poses: Path | None = typer.Option(None, help="synthetic: render the poses of a joints.mat."),
    domain: str = typer.Option("lsp", help="synthetic: appearance domain (clean|lsp|lspet)."),
    n_train: int = typer.Option(1000, help="synthetic: training images."),
    n_test: int = typer.Option(500, help="synthetic: test images."),
    stacks: int = typer.Option(2, help="Hourglass stacks (the paper: 2)."),
    channels: int = typer.Option(64, help="Feature channels (the paper: 256)."),
    depth: int = typer.Option(4, help="Hourglass recursion depth."),
    input_size: int = typer.Option(64, help="Input side in px (the paper: 256)."),
    epochs: int = typer.Option(10),
    batch_size: int = typer.Option(16),
    lr: float = typer.Option(2.5e-4),
    optimizer: str = typer.Option("rmsprop", help="rmsprop | adam"),
    schedule: str = typer.Option("constant", help="constant | step | cosine"),
    sigma: float = typer.Option(1.0, help="Target σ in heatmap px (the paper's code: 1.75)."),
    val_fraction: float = typer.Option(0.1, help="Training images held out for validation."),
    flip_test: bool = typer.Option(False, help="Flip test in validation and test."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:1 ..."),
    seed: int = typer.Option(0),
    num_workers: int = typer.Option(0),
    threads: int | None = typer.Option(
        None, help="torch CPU threads (1 is much faster on cores shared with other jobs)."
    ),
    out: Path = typer.Option(Path("runs/train"), help="Output folder."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    learning_loss: bool = typer.Option(
        False,
        "--learning-loss",
        help="Train Learning Loss's loss-prediction head with the model (saved in model.pt), "
        "for eglpp select --strategy learning-loss.",
    ),
    pck_normaliser: str | None = typer.Option(
        None,
        help="PCK's normaliser: torso (left shoulder to right hip) | head (MPII's head "
        "boxes) | bbox (max(w, h) of the box around the annotated joints). Default: head on "
        "MPII, torso where the skeleton has one, else bbox.",
    ),
) -> None:
    """Train a stacked hourglass and report test PCK (LSP, synthetic) or PCKh (MPII).

    Prints where model.pt is and its test metric beside the mean-pose baseline (the training
    set's average pose for every image): a model no better than that is not ready for select.

    Examples:

        eglpp train synthetic --n-train 500 --epochs 5 --out runs/train
        eglpp train lsp --data-root /data/leeds --device cuda --out runs/lsp
        eglpp train labelled2.json --epochs 40 --out runs/retrain

    The last one retrains on the labelled set that eglpp import merged.
    """
    args = dict(locals())
    _check_flags(args)
    check_device(device)
    if threads:
        torch.set_num_threads(threads)
    model_config = HourglassConfig(n_stacks=stacks, channels=channels, depth=depth)
    start = time.perf_counter()
    train_set, val_set, test_set, metric = _datasets(dataset, data_root, args)
    data_seconds = time.perf_counter() - start
    metric = chosen_metric(pck_normaliser, metric, dataset_skeleton(train_set))
    model_config = dataclasses.replace(model_config, n_joints=dataset_skeleton(train_set).n_joints)
    config = _train_config(args, metric)
    check_output(out)
    model = StackedHourglass(model_config).reset_parameters(torch.Generator().manual_seed(seed))
    aux = loss_head(model, seed) if learning_loss else None
    result = fit(
        model, train_set, config, val_set=val_set, seed=seed, device=device,
        progress=progress, checkpoint_path=out / "model.pt",
        log=None if progress else typer.echo, aux=aux,
    )  # fmt: skip
    scores = evaluate(
        model, test_set, metric=metric, alpha=config.alpha, device=device, flip_test=flip_test,
        baseline=training_mean_pose(train_set),
    )  # fmt: skip
    baseline = scores.pop("baseline")
    summary = {
        "dataset": dataset,
        "model": dataclasses.asdict(model_config),
        "train": dataclasses.asdict(config),
        "options": {k: v for k, v in args.items() if k not in ("out",)},
        "n_train": result.n_train,
        "n_val": result.n_val,
        "n_test": len(test_set),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "test": scores,
        "mean_pose_baseline": baseline,
        "train_seconds": result.seconds,
        "data_seconds": data_seconds,
        "threads": torch.get_num_threads(),
    }
    atomic_write_json(out / "train.json", summary)
    _report({**scores, "baseline": baseline}, len(test_set), result, epochs, out)


#: Each counting flag of ``eglpp train`` and its smallest value.
_AT_LEAST = {"n_train": 1, "n_test": 1, "stacks": 1, "channels": 4, "depth": 1,
             "input_size": 16, "epochs": 1, "batch_size": 1, "num_workers": 0}  # fmt: skip


def _check_flags(args: dict) -> None:
    """Refuse out-of-range flags by their flag name, before any data is read."""

    def bad(name: str, why: str) -> typer.BadParameter:
        return typer.BadParameter(
            f"{why}, got {args[name]}", param_hint="--" + name.replace("_", "-")
        )

    for name, least in _AT_LEAST.items():
        if args[name] < least:
            raise bad(name, f"must be >= {least}")
    for name in ("lr", "sigma"):
        if not args[name] > 0:
            raise bad(name, "must be > 0")
    if not 0 <= args["val_fraction"] < 1:
        raise bad("val_fraction", "must be in [0, 1)")
    if args["channels"] % 4:
        raise bad("channels", "must be a multiple of 4")
    multiple = 4 * 2 ** args["depth"]
    if args["input_size"] % multiple:
        raise bad(
            "input_size", f"must be divisible by 4·2^depth = {multiple} (--depth {args['depth']})"
        )


def _datasets(
    dataset: str, data_root: Path | None, args: dict
) -> tuple[Dataset, Dataset | None, Dataset, str]:
    """(train, validation or None, test, metric) of the DATASET argument."""
    if dataset == "synthetic":
        return _synthetic(args)
    name = dataset if dataset in ("lsp", "lspet", "mpii") else _guess(Path(dataset))
    root = data_root if dataset in ("lsp", "lspet", "mpii") else Path(dataset)
    if root is None:
        raise typer.BadParameter(f"dataset {dataset!r} needs --data-root")
    return _real(name, Path(root), args)


def _train_config(args: dict, metric: str) -> TrainConfig:
    """The training settings of the flags, validated on ``metric`` at its usual α."""
    return TrainConfig(
        epochs=args["epochs"],
        batch_size=args["batch_size"],
        lr=args["lr"],
        optimizer=args["optimizer"],
        schedule=args["schedule"],
        sigma=args["sigma"],
        val_fraction=args["val_fraction"],
        metric=metric,
        alpha=METRICS[metric][1],
        flip_test=args["flip_test"],
        num_workers=args["num_workers"],
    )
