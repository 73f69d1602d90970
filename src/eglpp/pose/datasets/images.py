"""The image dataset every real-format loader feeds: crops and augments the images of
:class:`~eglpp.pose.datasets.base.PoseAnnotations` with :mod:`eglpp.pose.datasets.transforms`
and yields items in the dataset contract::

    {"image": float32 (3, H, W) in [0, 1] (or normalised), "joints": float32 (J, 2) input pixels,
     "visible": bool (J,), "index": int64 (position in the dataset),
     "head_size": float32 (head_factor · head-box diagonal in input px, NaN without a head box),
     "area": float32 (the person's annotated area in input px², NaN where unknown: OKS's s²)}
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from eglpp.pose.datasets.base import PoseAnnotations, load_image
from eglpp.pose.datasets.preprocess import Normalization, input_hw, normalization
from eglpp.pose.datasets.transforms import (
    AugmentSample,
    CropAugment,
    crop_and_augment,
    sample_augmentation,
)

__all__ = ["ImagePoseDataset"]


class ImagePoseDataset(Dataset):
    """Cropped, optionally augmented people from :class:`PoseAnnotations` with images.

    Parameters
    ----------
    annotations : PoseAnnotations
        Must carry ``image_paths``.
    transform : CropAugment
        Crop and augmentation parameters.
    input_size : int or (int, int)
        S (a square S × S network input) or (H, W).
    seed : int
        With the epoch and the item's position, determines its augmentation:
        ``np.random.default_rng([seed, epoch, index])``. Set the epoch with :meth:`set_epoch`
        before creating a ``DataLoader`` iterator (persistent workers would keep an old copy).
    train : bool
        Augment (True) or use the identity crop (False: evaluation and scoring).
    where : list of str, optional
        What each item is called where it came from (e.g. a pool file's line): an image that
        cannot be read then raises ``ValueError`` naming it.
    normalize : Normalization, optional
        Applied to each crop (:mod:`~eglpp.pose.datasets.preprocess`); None: RGB in [0, 1].
    """

    def __init__(
        self,
        annotations: PoseAnnotations,
        transform: CropAugment = CropAugment(),
        input_size: int | tuple[int, int] = 256,
        seed: int = 0,
        train: bool = False,
        where: list[str] | None = None,
        normalize: Normalization | None = None,
    ) -> None:
        if annotations.image_paths is None:
            raise ValueError(f"annotations from {annotations.source} carry no image paths")
        input_hw(input_size)  # raises naming input_size
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.annotations = annotations
        self.transform = transform
        self.input_size = input_size
        self.seed = int(seed)
        self.train = train
        self.epoch = 0
        self.skeleton = annotations.skeleton
        self.where = where
        self.normalize = normalization(normalize)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch`` (a non-negative int)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.annotations)

    def augmentation(self, index: int) -> AugmentSample:
        """The augmentation item ``index`` gets in the current epoch (identity if not training)."""
        if not self.train:
            return AugmentSample()
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return sample_augmentation(self.transform, rng)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        ann = self.annotations
        try:
            image = load_image(ann.image_paths[index])
        except OSError as exc:
            if self.where is None:
                raise
            raise ValueError(f"pool item {index} ({self.where[index]}): {exc}") from exc
        result = crop_and_augment(
            image,
            ann.joints[index],
            ann.visible[index],
            input_size=self.input_size,
            flip_permutation=self.skeleton.flip_permutation(),
            center=None if ann.centers is None else ann.centers[index],
            scale=None if ann.scales is None else ann.scales[index],
            head_box=None if ann.head_boxes is None else ann.head_boxes[index],
            config=self.transform,
            sample=self.augmentation(index),
        )
        return {
            "image": torch.from_numpy(self.normalize.apply(result.image)),
            "joints": torch.from_numpy(result.joints),
            "visible": torch.from_numpy(result.visible),
            "index": torch.tensor(index, dtype=torch.int64),
            "head_size": torch.tensor(result.head_size, dtype=torch.float32),
            "area": torch.tensor(self._area(index, result.affine), dtype=torch.float32),
        }

    def _area(self, index: int, affine: np.ndarray) -> float:
        """The annotated area of person ``index`` in input px² (the crop scales areas by the
        determinant of its linear part), NaN where unknown."""
        areas = self.annotations.areas
        if areas is None:
            return float("nan")
        return float(areas[index]) * abs(float(np.linalg.det(affine[:, :2])))
