"""The experiment on a user's own labelled COCO keypoints file (``eglpp run --dataset
coco:FILE``): a pool and a test set split by image, the split recorded with the run.

Every person of the file is in the pool or the test set, never both, and people on the same
image stay together: the test images are a tenth (:data:`TEST_FRACTION`, at least one) of the
file's distinct images, drawn by the experiment's seed; the pool is every other image's
people. ``n_test`` and ``n_pool`` cap them (0: all), as on the other real datasets; the base
model trains on ``initial`` random pool people, as on LSP and MPII (no separate base set).

The split depends on the file's content and the seed only; :func:`split_record` describes it
(the file, its SHA-256, the test images' ``file_name`` values), the run directory keeps that
record (``split.json``, :func:`check_split`) and a resume that would
split otherwise (the file changed) is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.rundir import RunPaths
from eglpp.io import StateFileError, atomic_write_json, file_digest, read_json
from eglpp.pose.datasets import check_image_headers, check_joints_inside
from eglpp.pose.datasets.coco import coco_to_annotations, read_coco
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.seeds import stable_seed

__all__ = ["TEST_FRACTION", "coco_split", "coco_sets", "split_record", "check_split"]

#: Share of the file's images held out as the test set.
TEST_FRACTION = 0.1


def coco_split(file_names: list[str], seed: int) -> list[str]:
    """The test images (sorted) among ``file_names`` (one per person, repeats allowed): a
    :data:`TEST_FRACTION` (at least one) of the distinct names, drawn by ``seed``.

    >>> coco_split(["a.jpg", "b.jpg", "a.jpg"], seed=0) in (["a.jpg"], ["b.jpg"])
    True
    """
    names = sorted(set(file_names))
    if len(names) < 2:
        raise ValueError(
            f"a COCO experiment needs people on at least 2 images (a pool and a test set), "
            f"got {len(names)}"
        )
    rng = np.random.default_rng(stable_seed(seed, "coco-test"))
    n_test = max(1, round(TEST_FRACTION * len(names)))
    return sorted(names[i] for i in rng.permutation(len(names))[:n_test])


def split_record(path: Path, seed: int, test_images: list[str], n_pool: int, n_test: int) -> dict:
    """What the run directory records of the split (``split.json``)."""
    return {
        "annotations": str(path),
        "sha256": file_digest(path),
        "seed": seed,
        "test_fraction": TEST_FRACTION,
        "test_images": test_images,
        "n_pool": n_pool,
        "n_test": n_test,
    }


def coco_sets(cfg: ExperimentConfig) -> tuple[ImagePoseDataset, ImagePoseDataset, dict]:
    """(pool, test set, split record) of ``cfg.data_root``, a COCO keypoints file whose relative
    image names resolve against ``cfg.images_root`` (default: the file's ``info.images_root``,
    else its folder). Image headers are read before anything trains."""
    if cfg.data_root is None:
        raise ValueError("dataset 'coco' needs the annotation file: --dataset coco:FILE.json")
    path = Path(cfg.data_root)
    if not path.is_file():
        raise FileNotFoundError(f"--dataset coco:{path}: no such file")
    coco = read_coco(path)
    ann = coco_to_annotations(coco, images_root=cfg.images_root)
    by_id = coco.image_by_id()
    names = [by_id[a["image_id"]]["file_name"] for a in coco.annotations]
    test_images = coco_split(names, cfg.seed)
    in_test = np.isin(names, test_images)

    def people(mask: np.ndarray, cap: int, split: str) -> ImagePoseDataset:
        idx = np.flatnonzero(mask)
        part = ann.subset(idx[:cap] if cap else idx)
        sizes = check_image_headers(part.image_paths, f"{path} ({split})")
        check_joints_inside(part, [sizes[p] for p in part.image_paths])
        return ImagePoseDataset(
            part, input_size=cfg.input_size, seed=stable_seed(cfg.seed, split), train=False
        )

    pool, test = people(~in_test, cfg.n_pool, "pool"), people(in_test, cfg.n_test, "test")
    return pool, test, split_record(path, cfg.seed, test_images, len(pool), len(test))


def check_split(out: Path, record: dict) -> None:
    """Write ``split.json`` (:func:`split_record`) in run directory ``out``, or refuse a
    resume whose split is not the recorded one: the annotation file changed (its SHA-256) or
    its test images differ."""
    path = RunPaths(out).split
    if not path.exists():
        atomic_write_json(path, record)
        return
    saved = read_json(path)
    if not isinstance(saved, dict) or "sha256" not in saved or "test_images" not in saved:
        raise StateFileError(f"{path}: not a split record (sha256, test_images)")
    if saved["sha256"] != record["sha256"]:
        raise ValueError(
            f"{record['annotations']} changed since this run began (its SHA-256 is "
            f"{record['sha256'][:12]}…, {path} records {saved['sha256'][:12]}…): the pool and "
            "the test set would not be the run's; restore the file or use another --out"
        )
    if saved["test_images"] != record["test_images"]:
        raise ValueError(
            f"{path}: the run tested on other images of {record['annotations']} than this "
            f"split gives ({len(saved['test_images'])} recorded, first "
            f"{saved['test_images'][:1]}); use another --out"
        )
