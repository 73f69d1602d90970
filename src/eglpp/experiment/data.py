"""The data of a pose experiment: a base set, a pool and a test set, built from the config.

+-----------------------+---------------------------------+---------------------+-----------------+
| ``dataset``           | base (labelled from the start)  | pool                | test            |
+=======================+=================================+=====================+=================+
| synthetic             | ``n_base`` rendered (optional)  | ``n_pool`` rendered | ``n_test``      |
| lsp-lspet-rendered    | LSP's first 1000 poses (capped  | LSPET's poses,      | LSP's last 1000 |
|                       | by ``n_base``), "lsp" domain    | "lspet" domain      | poses, "lsp"    |
| lsp                   | none                            | LSP train images    | LSP test images |
| lspet                 | LSP train images                | LSPET images        | LSP test images |
| mpii                  | none                            | MPII train people   | Newell's valid  |
| coco (``data_root``:  | none                            | the other images'   | a tenth of the  |
| a COCO keypoints file)|                                 | people              | images' people  |
+-----------------------+---------------------------------+---------------------+-----------------+

Splits are fixed by the experiment's seed (not the run), so all runs share pool and test set;
a COCO file's is recorded with the run (:mod:`eglpp.experiment.coco_data`).
Real images are opened (headers only) before anything trains, so that an empty or foreign file
is named up front; PCKh (MPII's default metric) needs the test people's head boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset, Dataset, Subset

from eglpp.experiment.coco_data import coco_sets
from eglpp.experiment.config import ExperimentConfig
from eglpp.pose.datasets import (
    check_image_headers,
    check_joints_inside,
    load_lsp,
    load_lspet,
    load_mpii_experiment,
)
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.kinematics import poses_from_array
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.skeleton import Skeleton
from eglpp.seeds import stable_seed

__all__ = ["PoseData", "build_data", "labelled_set", "labelled_keys", "experiment_sets"]


@dataclass
class PoseData:
    """A pool to select from, a test set, and an optional base set labelled from the start."""

    pool: Dataset
    test: Dataset
    base: Dataset | None
    skeleton: Skeleton
    input_size: int
    description: str
    split: dict | None = None  # coco: the split's record (coco_data.split_record)

    @property
    def n_base(self) -> int:
        return 0 if self.base is None else len(self.base)


def _cap(n: int, cap: int) -> int:
    return n if cap == 0 else min(n, cap)


def _synthetic(cfg: ExperimentConfig, device: str) -> PoseData:

    def render(n: int, domain: str, split: str) -> SyntheticPoseDataset:
        config = RenderConfig(size=cfg.input_size, domain=domain)
        return SyntheticPoseDataset(n, config, seed=stable_seed(cfg.seed, split), device=device)

    if cfg.n_pool < 1 or cfg.n_test < 1:
        raise ValueError("dataset 'synthetic' needs n_pool >= 1 and n_test >= 1")
    pool = render(cfg.n_pool, cfg.pool_domain, "pool")
    test = render(cfg.n_test, cfg.pool_domain, "test")
    base = render(cfg.n_base, cfg.base_domain, "base") if cfg.n_base else None
    return PoseData(
        pool,
        test,
        base,
        pool.skeleton,
        cfg.input_size,
        f"rendered people: pool {cfg.n_pool} ({cfg.pool_domain} look), test {cfg.n_test}, "
        + (
            f"base set {cfg.n_base} ({cfg.base_domain} look, labelled from the start)"
            if cfg.n_base
            else "no separate base set (the base model trains on the initial pool images)"
        ),
    )


def _require(path: str | None, flag: str, dataset: str) -> Path:
    if path is None:
        raise ValueError(f"dataset '{dataset}' needs {flag} PATH")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{flag} {p}: no such file or folder (dataset '{dataset}')")
    return p


def _lsp_lspet_rendered(cfg: ExperimentConfig, device: str) -> PoseData:

    root = _require(cfg.poses, "--poses", cfg.dataset)
    lsp_mat, lspet_mat = root / "lsp" / "joints.mat", root / "lspet" / "joints.mat"
    for p in (lsp_mat, lspet_mat):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p}: not found (--poses must hold lsp/ and lspet/ folders with joints.mat)"
            )

    def render(ann, cap: int, domain: str, split: str) -> SyntheticPoseDataset:
        n = _cap(len(ann), cap)
        poses = poses_from_array(ann.joints[:n], ann.visible[:n])
        config = RenderConfig(size=cfg.input_size, domain=domain)
        return SyntheticPoseDataset(
            config=config, seed=stable_seed(cfg.seed, split), poses=poses, device=device
        )

    base = render(load_lsp(lsp_mat, "train", check_images=False), cfg.n_base, "lsp", "base")
    test = render(load_lsp(lsp_mat, "test", check_images=False), cfg.n_test, "lsp", "test")
    pool = render(load_lspet(lspet_mat, check_images=False), cfg.n_pool, "lspet", "pool")
    return PoseData(
        pool,
        test,
        base,
        pool.skeleton,
        cfg.input_size,
        f"rendered LSP→LSPET: base {len(base)} LSP poses, pool {len(pool)} LSPET "
        f"poses (lspet domain), test {len(test)} LSP poses",
    )


#: What ``--data-root`` holds for each real dataset: (annotation files, layout in words).
_LAYOUTS = {
    "lsp": (("joints.mat",), "LSP's joints.mat and images/"),
    "lspet": (("lsp/joints.mat", "lspet/joints.mat"), "lsp/ and lspet/, each with joints.mat "
              "and images/ (LSP train as the base set, LSPET as the pool, LSP test)"),
}  # fmt: skip


def _check_layout(root: Path, dataset: str) -> None:
    """``root`` holds the annotation files of ``dataset`` (MPII looks for several layouts; a
    file is the annotation file itself)."""
    needed, layout = _LAYOUTS.get(dataset, ((), "")) if root.is_dir() else ((), "")
    missing = [name for name in needed if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"--data-root {root}: no {missing[0]} (dataset '{dataset}' expects {layout})"
        )


def _real(cfg: ExperimentConfig) -> PoseData:

    root = _require(cfg.data_root, "--data-root", cfg.dataset)
    _check_layout(root, cfg.dataset)

    def images(ann, cap: int, split: str) -> ImagePoseDataset:
        ann = ann.subset(np.arange(_cap(len(ann), cap)))
        sizes = check_image_headers(ann.image_paths, f"{ann.source} ({split})")
        check_joints_inside(ann, [sizes[p] for p in ann.image_paths])
        return ImagePoseDataset(
            ann, input_size=cfg.input_size, seed=stable_seed(cfg.seed, split), train=False
        )

    if cfg.dataset == "lsp":
        pool = images(load_lsp(root, "train"), cfg.n_pool, "pool")
        test = images(load_lsp(root, "test"), cfg.n_test, "test")
        base = None
    elif cfg.dataset == "lspet":
        base = images(load_lsp(root / "lsp", "train"), 0, "base")
        test = images(load_lsp(root / "lsp", "test"), cfg.n_test, "test")
        pool = images(load_lspet(root / "lspet"), cfg.n_pool, "pool")
    else:
        train_ann, val_ann = load_mpii_experiment(root)
        pool, test, base = (
            images(train_ann, cfg.n_pool, "pool"),
            images(val_ann, cfg.n_test, "test"),
            None,
        )
    return PoseData(
        pool,
        test,
        base,
        pool.skeleton,
        cfg.input_size,
        f"{cfg.dataset} images from {root}: pool {len(pool)}, test {len(test)}, "
        f"base {0 if base is None else len(base)}",
    )


def _coco(cfg: ExperimentConfig) -> PoseData:
    pool, test, split = coco_sets(cfg)
    return PoseData(
        pool,
        test,
        None,
        pool.skeleton,
        cfg.input_size,
        f"{cfg.data_root} ({pool.skeleton.name}, {pool.skeleton.n_joints} keypoints): pool "
        f"{len(pool)} people, test {len(test)} people on {len(split['test_images'])} "
        "held-out images (split.json), no base set",
        split,
    )


def build_data(cfg: ExperimentConfig, device: str = "cpu") -> PoseData:
    """Build the experiment's datasets (rendering on ``device`` where rendered)."""
    if cfg.dataset == "synthetic":
        data = _synthetic(cfg, device)
    elif cfg.dataset == "lsp-lspet-rendered":
        data = _lsp_lspet_rendered(cfg, device)
    elif cfg.dataset == "coco":
        data = _coco(cfg)
    else:
        data = _real(cfg)
    cfg = cfg.resolved()
    if data.skeleton.n_joints != cfg.model.n_joints:
        raise ValueError(
            f"model.n_joints={cfg.model.n_joints} but dataset '{cfg.dataset}' has "
            f"{data.skeleton.n_joints} joints (--set model.n_joints={data.skeleton.n_joints})"
        )
    if cfg.metric == "pck" and not data.skeleton.has_torso:
        raise ValueError(
            f"metric 'pck' (torso) needs a left_shoulder and a right_hip; the "
            f"{data.skeleton.name} skeleton of dataset '{cfg.dataset}' has none: use "
            "--set metric=pckb (the keypoints' box)"
        )
    if cfg.metric == "pckh" and not _has_head_boxes(data.test):
        raise ValueError(
            f"metric 'pckh' needs head boxes and the test set of dataset '{cfg.dataset}' has "
            "none (MPII's come from its .mat release, annot/gt_valid.mat or the JSON's "
            "head_box); use --set metric=pck"
        )
    need = cfg.initial + cfg.cycles * cfg.budget
    if need > len(data.pool):
        raise ValueError(
            f"initial ({cfg.initial}) + cycles × budget ({cfg.cycles} × "
            f"{cfg.budget}) = {need} is larger than the pool ({len(data.pool)})"
        )
    if data.n_base + cfg.initial == 0:
        raise ValueError(
            "no labelled images to train the base model: set initial >= 1 "
            "(or use a dataset with a base set)"
        )
    return data


def _has_head_boxes(test: Dataset) -> bool:
    """Whether a test set's people carry head boxes (the PCKh normaliser)."""
    ann = getattr(test, "annotations", None)
    boxes = None if ann is None else ann.head_boxes
    return boxes is not None and bool(np.isfinite(boxes).all(axis=1).any())


def labelled_set(data: PoseData, labelled_map: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """(dataset of every labelled image, their pool indices): the base set, then the pool's.

    ``data`` is an experiment's :class:`~eglpp.experiment.data.PoseData`.
    """
    pool_idx = np.flatnonzero(labelled_map >= 0)
    parts = ([data.base] if data.base is not None else []) + [Subset(data.pool, pool_idx.tolist())]
    dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if isinstance(dataset, ConcatDataset):  # the training code reads these from the dataset
        dataset.skeleton, dataset.input_size = data.skeleton, data.input_size
    return dataset, pool_idx


def labelled_keys(data: PoseData, pool_idx: np.ndarray) -> np.ndarray:
    """An identity per item of :func:`labelled_set`'s dataset: ``-1 - i`` for base item i, the
    pool index for pool items (the keys of ``fit``'s common-random-numbers shuffle)."""
    return np.concatenate([-1 - np.arange(data.n_base), np.asarray(pool_idx)]).astype(np.int64)


def experiment_sets(data: PoseData, labelled_map: np.ndarray) -> tuple[Subset, Dataset]:
    """(unlabelled pool set in unlabelled order, labelled set) of an experiment's cycle."""
    unlabelled = np.flatnonzero(labelled_map < 0)
    pool_set = Subset(data.pool, unlabelled.tolist())
    pool_set.skeleton, pool_set.input_size = data.skeleton, data.input_size
    return pool_set, labelled_set(data, labelled_map)[0]
