"""Pose annotations in memory and the image dataset every real-format loader feeds.

:class:`PoseAnnotations` holds one dataset's (or split's) annotations, validated on construction
with errors that name the file they came from; the image dataset that crops and augments them
is :class:`eglpp.pose.datasets.images.ImagePoseDataset`. This module needs no torch: the
commands that only read and write annotation files (``eglpp import``, ``demo-annotate``,
``label-studio-config``) start without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, UnidentifiedImageError

from eglpp.pose.skeleton import Skeleton

__all__ = [
    "AnnotationError",
    "ImageError",
    "PoseAnnotations",
    "load_image",
    "check_image_files",
    "check_image_headers",
    "check_joints_inside",
    "image_size",
    "read_mat",
]


class AnnotationError(ValueError):
    """An annotation file is unreadable or does not have the expected content."""


class ImageError(OSError):
    """An image file exists but cannot be decoded (empty, truncated, not an image)."""


def _optional(array, dtype, shape: tuple[int, ...], name: str, source: str) -> np.ndarray | None:
    if array is None:
        return None
    array = np.asarray(array, dtype=dtype)
    if array.shape != shape:
        raise AnnotationError(f"{source}: field '{name}' has shape {array.shape}, expected {shape}")
    return array


@dataclass
class PoseAnnotations:
    """Joint annotations of N people, in one skeleton's joint order.

    ``visible`` marks annotated joints (they count in the loss and the metric); ``occluded`` marks
    annotated joints flagged as occluded (LSP's flag 1; MPII's ``is_visible`` = 0) and is a subset
    of ``visible``. Joints that are not annotated have coordinates (0, 0). ``centers``/``scales``
    may hold NaN for a person without them (the crop then uses the joints' box); ``head_boxes``
    may hold NaN rows. Arrays are converted to the dtypes below; bad shapes or values raise
    :class:`AnnotationError` naming ``source`` and the field.
    """

    skeleton: Skeleton
    joints: np.ndarray  # (N, J, 2) float32, original-image pixels
    visible: np.ndarray  # (N, J) bool
    occluded: np.ndarray | None = None  # (N, J) bool; None -> all False
    image_paths: list[Path] | None = None  # (N,) one image per person (repeats allowed)
    centers: np.ndarray | None = None  # (N, 2) float32, original pixels
    scales: np.ndarray | None = None  # (N,) or (N, 2) (w, h) float32, 200-px units
    head_boxes: np.ndarray | None = None  # (N, 4) float32 x1, y1, x2, y2
    source: str = field(default="<memory>")
    areas: np.ndarray | None = None  # (N,) float32 px², COCO's ``area`` (OKS); NaN: unknown

    def __post_init__(self) -> None:
        src = self.source
        if not isinstance(self.skeleton, Skeleton):
            raise AnnotationError(f"{src}: skeleton must be a Skeleton, got {self.skeleton!r}")
        J = self.skeleton.n_joints
        joints = np.asarray(self.joints, dtype=np.float32)
        if joints.ndim != 3 or joints.shape[1:] != (J, 2):
            raise AnnotationError(
                f"{src}: field 'joints' has shape {joints.shape}, expected (N, {J}, 2) "
                f"for the {self.skeleton.name} skeleton"
            )
        if not np.all(np.isfinite(joints)):
            raise AnnotationError(f"{src}: field 'joints' holds non-finite values")
        N = len(joints)
        self.joints = joints
        if self.visible is None:
            raise AnnotationError(f"{src}: field 'visible' is required")
        self.visible = _optional(self.visible, bool, (N, J), "visible", src)
        occluded = np.zeros((N, J), bool) if self.occluded is None else self.occluded
        self.occluded = _optional(occluded, bool, (N, J), "occluded", src)
        if np.any(self.occluded & ~self.visible):
            raise AnnotationError(f"{src}: field 'occluded' marks joints that are not visible")
        if self.image_paths is not None:
            self.image_paths = [Path(p) for p in self.image_paths]
            if len(self.image_paths) != N:
                raise AnnotationError(
                    f"{src}: field 'image_paths' has {len(self.image_paths)} entries, expected {N}"
                )
        self.centers = _optional(self.centers, np.float32, (N, 2), "centers", src)
        scales = None if self.scales is None else np.asarray(self.scales, np.float32)
        wh = scales is not None and scales.ndim == 2  # a box's (w, h), not a square's side
        self.scales = _optional(scales, np.float32, (N, 2) if wh else (N,), "scales", src)
        if self.scales is not None and np.any(self.scales[np.isfinite(self.scales)] <= 0):
            raise AnnotationError(f"{src}: field 'scales' must be > 0 (or NaN when unknown)")
        self.head_boxes = _optional(self.head_boxes, np.float32, (N, 4), "head_boxes", src)
        self.areas = _optional(self.areas, np.float32, (N,), "areas", src)

    def __len__(self) -> int:
        return len(self.joints)

    def subset(self, indices: ArrayLike) -> PoseAnnotations:
        """The annotations at ``indices`` (positions or a boolean mask), in that order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {idx.shape} for {len(self)} people")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} people ({self.source})")

        def take(a):
            return None if a is None else a[idx]

        return PoseAnnotations(
            skeleton=self.skeleton,
            joints=self.joints[idx],
            visible=self.visible[idx],
            occluded=self.occluded[idx],
            image_paths=None if self.image_paths is None else [self.image_paths[i] for i in idx],
            centers=take(self.centers),
            scales=take(self.scales),
            head_boxes=take(self.head_boxes),
            source=self.source,
            areas=take(self.areas),
        )


def check_image_files(paths: list[Path], source: str) -> None:
    """Raise ``FileNotFoundError`` naming the first image of ``paths`` that does not exist.

    Lists each folder once (``os.scandir``) instead of one ``stat`` per image.
    """
    listing: dict[Path, set[str]] = {}
    missing = []
    for path in paths:
        folder = path.parent
        if folder not in listing:
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"{source}: image folder {folder} not found (needed for {path.name}; "
                    "pass check_images=False to load the annotations alone)"
                )
            with os.scandir(folder) as entries:
                listing[folder] = {e.name for e in entries}
        if path.name not in listing[folder]:
            missing.append(path)
    if missing:
        raise FileNotFoundError(
            f"{source}: {len(missing)} image file(s) missing, first {missing[0]}"
        )


def read_mat(path: str | os.PathLike, **kwargs: Any) -> dict:
    """``scipy.io.loadmat`` with errors that name the file: missing, not a (v5) ``.mat``."""
    import scipy.io  # here: the COCO-only commands start without it

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        return scipy.io.loadmat(path, **kwargs)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5) files
        raise AnnotationError(f"{path}: MATLAB v7.3 (HDF5) files are not supported: {err}") from err
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError, ... on garbage
        raise AnnotationError(f"{path}: not a readable MATLAB .mat file ({err})") from err


def load_image(path: Path) -> Image.Image:
    """Open an image as RGB; a missing file raises FileNotFoundError, an undecodable one
    :class:`ImageError`, both naming it."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"cannot decode image {path}: {err}") from err


def _header(path: Path) -> tuple[str, tuple[int, int] | None]:
    """(why ``path`` does not open as an image, "" where it does; its (width, height))."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        return "file not found", None
    except IsADirectoryError:
        return "a folder, not a file", None
    except UnidentifiedImageError:
        return ("empty" if path.stat().st_size == 0 else "not an image PIL can read"), None
    except (OSError, SyntaxError, ValueError) as err:
        return f"{type(err).__name__}: {err}", None
    if width < 1 or height < 1:
        return f"size {width}×{height}", None
    return "", (width, height)


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, None when the file cannot be read."""
    return _header(Path(path))[1]


def check_image_headers(paths: list[Path], source: str) -> dict[Path, tuple[int, int]]:
    """The (width, height) of each distinct image of ``paths``, read from its header only (no
    pixels are decoded); raises :class:`ImageError` naming those whose header does not read.

    Catches empty files, folders and files that are not images before any training starts; a
    file truncated inside its pixel data still raises later, when :func:`load_image` decodes it.
    """
    headers = {p: _header(p) for p in dict.fromkeys(paths)}
    bad = [(p, why) for p, (why, _) in headers.items() if why]
    if bad:
        first, why = bad[0]
        raise ImageError(
            f"{source}: {len(bad)} image file(s) cannot be read, first {first} ({why})"
        )
    return {p: size for p, (_, size) in headers.items()}


def check_joints_inside(
    ann: PoseAnnotations,
    sizes: list[tuple[int, int] | None],
    names: list[str] | None = None,
) -> None:
    """Refuse people whose annotated joints lie far outside their image: more than half the
    image's width (height) beyond its left or right (top or bottom) edge, the mark of swapped
    x and y, another image's annotation or coordinates in other units. Joints slightly outside
    (a limb leaving the frame) are kept.

    ``sizes``: (width, height) of each person's image (None: not checked); ``names``: how to name
    each person in the error (default ``person k``). Raises :class:`AnnotationError`.
    """
    far = []
    for k, size in enumerate(sizes):
        if size is None:
            continue
        w, h = size
        x, y = ann.joints[k, :, 0], ann.joints[k, :, 1]
        out = ann.visible[k] & ((x < -w / 2) | (x > 1.5 * w) | (y < -h / 2) | (y > 1.5 * h))
        far += [(k, j) for j in np.flatnonzero(out)]
    if far:
        k, j = far[0]
        who = names[k] if names is not None else f"person {k}"
        w, h = sizes[k]
        x, y = ann.joints[k, j]
        raise AnnotationError(
            f"{ann.source}: {len(far)} annotated joint(s) of {len({k for k, _ in far})} "
            f"people lie far outside their image (more than half its size beyond the border); "
            f"first {who}: {ann.skeleton.joints[j]} at ({x:.1f}, {y:.1f}) in a {w}×{h} image"
        )
