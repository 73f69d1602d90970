"""``eglpp train``: train a stacked hourglass on a dataset by name or path, evaluate it.

Datasets: :mod:`eglpp.cli.train_data` (a COCO keypoints file tests on held-out images that
stay the same across rounds).

The output folder receives ``model.pt`` (the kept weights, see ``eglpp.pose.train``) and
``train.json`` (configs, per-epoch history, test scores with their standard errors, the
mean-pose baseline where the test set's joints are known without loading images, timings).
``train.json`` is first written with the command's options when training starts: a folder that
holds a model trained with other options (or another command's output) is refused unless
``--overwrite``; the same command there trains again.
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

from eglpp.cli.evaluate import oks_text, score_text
from eglpp.cli.train_choices import chosen_metric, loss_head
from eglpp.cli.train_data import load_datasets
from eglpp.devices import check_device
from eglpp.io import atomic_write_json, check_output, read_json
from eglpp.outdir import refusal, refuse_other_kind
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.preprocess import input_hw, normalization, parse_input_size
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import dataset_joints, dataset_skeleton, evaluate
from eglpp.pose.metrics import mean_pose
from eglpp.pose.normalisers import METRICS
from eglpp.pose.train import TrainConfig, fit

__all__ = ["train", "training_mean_pose"]


def training_mean_pose(train: Dataset) -> np.ndarray:
    """(J, 2) the training set's mean pose in input px (read without augmentation): the
    mean-pose baseline predicts it for every test image."""
    if isinstance(train, ImagePoseDataset) and train.train:
        train = ImagePoseDataset(
            train.annotations,
            input_size=train.input_size,
            seed=train.seed,
            train=False,
            normalize=train.normalize,
        )
    return mean_pose(*dataset_joints(train))


def _report(scores: dict, n_test: int, result, epochs: int, out: Path) -> None:
    """Where the model is, its test metric against the mean-pose baseline, and what next."""
    base = scores.get("baseline")
    line = f"{score_text(scores)} on {n_test} test images"
    if base is not None:
        line += "; mean-pose baseline (the training set's average pose for every image) "
        line += score_text({**scores, "mean": base, "se": scores.get("baseline_se")}, unit=False)
    typer.echo(line)
    if "oks" in scores:
        typer.echo(oks_text(scores["oks"]))
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
    input_size: str = typer.Option(
        "64", help="Input px: S (square; the paper: 256) or H W / HxW, e.g. 256x192."
    ),
    normalize: str | None = typer.Option(
        None,
        help="What the network is fed: unit (RGB in [0, 1], the default) | imagenet "
        "(ImageNet mean/std) | none (0-255) | MEAN/STD as R,G,B/R,G,B; recorded for select.",
    ),
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
    held_out: Path | None = typer.Option(
        None,
        help="COCO .json: the record of the held-out test images (default: "
        "<labelled>.heldout.json beside it, written on the first train).",
    ),
    out: Path = typer.Option(
        Path("runs/train"),
        help="Output folder (one model: a folder holding another is refused).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a model trained with other options in --out."
    ),
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
    _check_start(args)
    if threads:
        torch.set_num_threads(threads)
    model_config = HourglassConfig(n_stacks=stacks, channels=channels, depth=depth)
    start = time.perf_counter()
    train_set, val_set, test_set, metric = load_datasets(dataset, data_root, args)
    data_seconds = time.perf_counter() - start
    metric = chosen_metric(pck_normaliser, metric, dataset_skeleton(train_set))
    model_config = dataclasses.replace(model_config, n_joints=dataset_skeleton(train_set).n_joints)
    config = _train_config(args, metric)
    check_output(out)
    atomic_write_json(out / "train.json", _command(args))  # what trains here, from the start
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
        **_command(args),
        "normalize": normalization(normalize).record(),  # what the model was fed
        "n_train": result.n_train,
        "n_val": result.n_val,
        "n_test": len(test_set),
        **_test_images(test_set),
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


def _test_images(test_set: Dataset) -> dict:
    """``{"test_images": [...]}``: the test images of a set read from files (else empty)."""
    if not isinstance(test_set, ImagePoseDataset):
        return {}
    return {"test_images": sorted({str(p) for p in test_set.annotations.image_paths})}


#: Options that do not change the model: a rerun with others is the same command.
_NOT_THE_MODEL = ("out", "overwrite", "progress", "threads", "num_workers", "device")


def _command(args: dict) -> dict:
    """``train.json``'s record of the command: the dataset and the options (not ``--out``)."""
    options = {k: v for k, v in args.items() if k not in ("out", "overwrite")}
    return json.loads(json.dumps({"dataset": args["dataset"], "options": options}, default=str))


def _check_folder(out: Path, args: dict) -> None:
    """Refuse ``out`` where it holds another command's output or a model trained with other
    options than ``args`` (:data:`_NOT_THE_MODEL` aside)."""
    refuse_other_kind(out, "model")
    record = out / "train.json"
    if not record.is_file():
        if (out / "model.pt").is_file():
            raise ValueError(refusal(out, "a model.pt that no train.json describes", record))
        return
    saved, now = read_json(record), _command(args)
    before = saved.get("options") if isinstance(saved, dict) else None
    before = before if isinstance(before, dict) else {}
    diff = [k for k in now["options"] if k not in _NOT_THE_MODEL
            and before.get(k) != now["options"][k]]  # fmt: skip
    if saved.get("dataset") != now["dataset"]:
        diff.insert(0, "dataset")
    if diff:
        was = {"dataset": saved.get("dataset"), **before}
        said = ", ".join(f"{k} {was.get(k)!s}" for k in diff[:4]) + (", …" if len(diff) > 4 else "")
        raise ValueError(refusal(out, f"a model trained with other options ({said})", record))


#: Each counting flag of ``eglpp train`` and its smallest value.
_AT_LEAST = {"n_train": 1, "n_test": 1, "stacks": 1, "channels": 4, "depth": 1,
             "input_size": 16, "epochs": 1, "batch_size": 1, "num_workers": 0}  # fmt: skip


def _check_start(args: dict) -> None:
    """Refuse the command before any data is read: its flags, its device, a named dataset
    without ``--data-root``, and an ``--out`` holding something else (unless ``--overwrite``)."""
    _check_flags(args)
    check_device(args["device"])
    if args["dataset"] in ("lsp", "lspet", "mpii") and args["data_root"] is None:  # before out
        raise typer.BadParameter(f"dataset {args['dataset']!r} needs --data-root")
    if not args["overwrite"]:
        _check_folder(args["out"], args)


def _check_flags(args: dict) -> None:
    """Refuse out-of-range flags by their flag name, before any data is read."""

    def bad(name: str, why: str) -> typer.BadParameter:
        return typer.BadParameter(
            f"{why}, got {args[name]}", param_hint="--" + name.replace("_", "-")
        )

    try:  # "256x192" -> (256, 192), "64" -> 64; the record keeps what the model takes
        args["input_size"] = parse_input_size(args["input_size"])
        normalization(args["normalize"])
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    for name, least in _AT_LEAST.items():
        value = min(input_hw(args[name])) if name == "input_size" else args[name]
        if value < least:
            raise bad(name, f"must be >= {least}")
    for name in ("lr", "sigma"):
        if not args[name] > 0:
            raise bad(name, "must be > 0")
    if not 0 <= args["val_fraction"] < 1:
        raise bad("val_fraction", "must be in [0, 1)")
    if args["channels"] % 4:
        raise bad("channels", "must be a multiple of 4")
    multiple = 4 * 2 ** args["depth"]
    if any(v % multiple for v in input_hw(args["input_size"])):
        raise bad(
            "input_size",
            f"H and W must be divisible by 4·2^depth = {multiple} (--depth {args['depth']})",
        )
    if args["dataset"] == "synthetic" and (
        not isinstance(args["input_size"], int) or args["normalize"] not in (None, "unit")
    ):
        raise bad("input_size" if args["normalize"] in (None, "unit") else "normalize",
                  "synthetic renders square RGB in [0, 1]; for other inputs write a set with "
                  "eglpp demo-data and train on its labelled.json")  # fmt: skip


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
