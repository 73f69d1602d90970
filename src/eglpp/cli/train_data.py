"""The data sets of ``eglpp train`` and ``eglpp evaluate``: by name, or a path to annotations.

- ``synthetic``: rendered people (``eglpp.pose.datasets.synthetic``); with ``--poses
  joints.mat`` the poses of an LSP/LSPET annotation file are rendered, its first half for
  training and its last half for testing (LSP's official split);
- ``lsp`` / ``lspet`` / ``mpii`` with ``--data-root`` (the official formats, their official
  splits), or a path: a folder or ``joints.mat`` (LSP 3×14×N or LSPET 14×3×N), an MPII
  ``.mat``/``.json`` file, or a COCO keypoints ``.json`` (e.g. the labelled set ``eglpp import``
  merged), whose test images are held out once and kept across rounds
  (:mod:`eglpp.practitioner.heldout`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from torch.utils.data import Dataset

from eglpp.pose.datasets import load_lsp, load_lspet
from eglpp.pose.datasets.base import (
    check_image_headers,
    check_joints_inside,
    read_mat,
)
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.kinematics import PoseSet, poses_from_joints_mat
from eglpp.pose.datasets.lsp import read_joints_mat, resolve_joints_mat
from eglpp.pose.datasets.mpii import load_mpii_mat
from eglpp.pose.datasets.mpii_json import load_mpii_json
from eglpp.pose.datasets.preprocess import normalization
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.normalisers import default_metric
from eglpp.practitioner.heldout import held_out_mask
from eglpp.practitioner.labelled import load_labelled

__all__ = ["load_datasets", "guess_dataset"]


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
        test, record, created = held_out_mask(root, ann.image_paths, args.get("held_out"))
        train_ann, test_ann = ann.subset(~test), ann.subset(test)
        metric = default_metric(ann.skeleton)  # torso, or the joints' box without one
        n_images = len(set(ann.subset(test).image_paths))
        typer.echo(
            f"test set: the {n_images} held-out images ({int(test.sum())} people) "
            + (f"chosen now and recorded in {record}: later trains of this set, and of the "
               "sets eglpp import merges from it, test on the same images"
               if created else f"recorded in {record} (the same as in earlier rounds)")
        )  # fmt: skip
    elif name == "mpii":
        load = load_mpii_json if root.suffix == ".json" else load_mpii_mat
        if root.is_dir():
            root = root / "mpii_human_pose_v1_u12_1.mat"
        valid = args["valid_images"]
        train_ann = load(root, "train", valid_images=valid)
        test_ann, metric = load(root, "valid", valid_images=valid), "pckh"
    else:
        raise typer.BadParameter(f"unknown dataset {name!r}", param_hint="DATASET")
    size, seed, norm = args["input_size"], args["seed"], normalization(args.get("normalize"))
    for ann in (train_ann, test_ann):  # before any training: unreadable images, far-off joints
        sizes = check_image_headers(ann.image_paths, ann.source)
        check_joints_inside(ann, [sizes[p] for p in ann.image_paths])
    val = None
    if args["val_fraction"] > 0:  # an unaugmented validation set, split off by the seed
        perm = np.random.default_rng(seed).permutation(len(train_ann))
        n_val = max(1, round(args["val_fraction"] * len(train_ann)))
        val = ImagePoseDataset(
            train_ann.subset(perm[:n_val]), input_size=size, seed=seed, normalize=norm
        )
        train_ann = train_ann.subset(perm[n_val:])
    train = ImagePoseDataset(train_ann, input_size=size, seed=seed, train=True, normalize=norm)
    test = ImagePoseDataset(test_ann, input_size=size, seed=seed, normalize=norm)
    return train, val, test, metric


def guess_dataset(path: Path) -> str:
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


def load_datasets(
    dataset: str, data_root: Path | None, args: dict
) -> tuple[Dataset, Dataset | None, Dataset, str]:
    """(train, validation or None, test, metric) of the DATASET argument."""
    if dataset == "synthetic":
        return _synthetic(args)
    name = dataset if dataset in ("lsp", "lspet", "mpii") else guess_dataset(Path(dataset))
    root = data_root if dataset in ("lsp", "lspet", "mpii") else Path(dataset)
    if root is None:
        raise typer.BadParameter(f"dataset {dataset!r} needs --data-root")
    return _real(name, Path(root), args)
