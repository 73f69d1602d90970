"""Pose datasets: annotations, the crop-and-augment transform, official-format loaders.

The image dataset, ``ImagePoseDataset``, is in :mod:`eglpp.pose.datasets.images` (torch): the
annotation readers here need no torch.
"""

from eglpp.pose.datasets.base import (
    AnnotationError,
    ImageError,
    PoseAnnotations,
    check_image_headers,
    check_joints_inside,
    image_size,
    load_image,
)
from eglpp.pose.datasets.lsp import load_lsp
from eglpp.pose.datasets.lspet import load_lspet
from eglpp.pose.datasets.mpii import load_mpii_mat, read_split_file
from eglpp.pose.datasets.mpii_experiment import load_mpii_experiment
from eglpp.pose.datasets.mpii_json import load_mpii_json
from eglpp.pose.datasets.transforms import AugmentSample, CropAugment, crop_and_augment

__all__ = [
    "AnnotationError",
    "AugmentSample",
    "CropAugment",
    "ImageError",
    "ImagePoseDataset",
    "PoseAnnotations",
    "check_image_headers",
    "check_joints_inside",
    "crop_and_augment",
    "image_size",
    "load_image",
    "load_lsp",
    "load_lspet",
    "load_mpii_experiment",
    "load_mpii_json",
    "load_mpii_mat",
    "read_split_file",
]
