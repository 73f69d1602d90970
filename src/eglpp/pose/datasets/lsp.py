"""Leeds Sports Pose (LSP) in its official format.

``joints.mat`` holds the MATLAB variable ``joints`` of shape 3×14×N (rows x, y, flag); the flag
is 1 for an **occluded** joint that is still annotated, so every joint is ``visible`` (counts in
the loss and the metric) and flag 1 sets ``occluded``. Images are ``images/im0001.jpg`` …
(4 digits, 1-based). The official split is the first 1000 images for training and the last 1000
for testing; for any N, ``split="train"`` is the first ⌊N/2⌋ and ``"test"`` the rest (use
``split="all"`` and :meth:`PoseAnnotations.subset` for any other split).

Coordinates are MATLAB's 1-based pixels; ``one_based=True`` (the default) subtracts 1 so that
they follow the package's 0-based pixel-centre convention.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eglpp.pose.datasets.base import (
    AnnotationError,
    PoseAnnotations,
    check_image_files,
    read_mat,
)
from eglpp.pose.skeleton import LSP

__all__ = ["load_lsp", "load_joints_mat", "read_joints_mat", "resolve_joints_mat"]


def resolve_joints_mat(path: str | os.PathLike) -> Path:
    """``path`` itself if it is a file, else ``path/joints.mat``."""
    path = Path(path)
    if path.is_dir():
        path = path / "joints.mat"
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    return path


def read_joints_mat(path: Path, n_joints: int = 14) -> np.ndarray:
    """The ``joints`` variable of an LSP/LSPET ``.mat`` file as (N, J, 3): x, y, flag.

    Accepts 3×J×N (LSP's layout) and J×3×N (LSPET's); the two cannot be confused because J ≠ 3.
    """
    mat = read_mat(path)
    if "joints" not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise AnnotationError(f"{path}: no variable 'joints' (variables found: {found})")
    raw = mat["joints"]
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in "fiu":
        raise AnnotationError(f"{path}: variable 'joints' is not a numeric array")
    if raw.ndim == 2 and raw.shape in ((3, n_joints), (n_joints, 3)):
        raw = raw[:, :, None]  # MATLAB drops a trailing singleton: N = 1
    if raw.ndim != 3 or {raw.shape[0], raw.shape[1]} != {3, n_joints}:
        raise AnnotationError(
            f"{path}: variable 'joints' has shape {raw.shape}, expected 3×{n_joints}×N or "
            f"{n_joints}×3×N ({n_joints} joints with x, y, flag)"
        )
    xyf = raw.transpose(2, 1, 0) if raw.shape[0] == 3 else raw.transpose(2, 0, 1)
    xyf = np.asarray(xyf, dtype=np.float64)
    if not np.all(np.isfinite(xyf)):
        raise AnnotationError(f"{path}: variable 'joints' holds non-finite values")
    flags = xyf[:, :, 2]
    if not np.all((flags == 0) | (flags == 1)):
        bad = np.unique(flags[(flags != 0) & (flags != 1)])[:5]
        raise AnnotationError(f"{path}: 'joints' flags must be 0 or 1, found {bad.tolist()}")
    return xyf


def image_paths_for(folder: Path, n: int, digits: int) -> list[Path]:
    """``folder/im0001.jpg`` … with ``digits`` digits, 1-based."""
    return [folder / f"im{i + 1:0{digits}d}.jpg" for i in range(n)]


def check_numbered_images(folder: Path, n: int, digits: int, source: Path) -> None:
    """Every ``im…jpg`` for 1..n exists, and the folder holds no more of them than n."""
    paths = image_paths_for(folder, n, digits)
    check_image_files(paths, str(source))
    with os.scandir(folder) as entries:
        numbered = [
            e.name
            for e in entries
            if e.name.startswith("im") and e.name.endswith(".jpg") and len(e.name) == digits + 6
        ]
    if len(numbered) != n:
        raise AnnotationError(
            f"{source}: variable 'joints' has N={n} people but {folder} holds "
            f"{len(numbered)} images named im{'#' * digits}.jpg"
        )


def split_indices(n: int, split: str, source: Path) -> np.ndarray:
    """First half (``train``), last half (``test``) or everything (``all``)."""
    half = n // 2
    ranges = {"train": range(half), "test": range(half, n), "all": range(n)}
    if split not in ranges:
        raise ValueError(f"split must be one of {sorted(ranges)}, got {split!r}")
    idx = np.asarray(ranges[split], dtype=np.int64)
    if len(idx) == 0:
        raise AnnotationError(f"{source}: split {split!r} is empty ({n} people in the file)")
    return idx


def load_lsp(
    path: str | os.PathLike,
    split: str = "all",
    *,
    images_dir: str | os.PathLike | None = None,
    check_images: bool = True,
    one_based: bool = True,
) -> PoseAnnotations:
    """Load LSP annotations (and image paths) from a folder holding ``joints.mat``.

    Parameters
    ----------
    path : path
        The dataset folder (with ``joints.mat`` and ``images/``) or the ``.mat`` file itself.
    split : {"all", "train", "test"}
        ``train`` = first half (the official first 1000), ``test`` = last half.
    images_dir : path, optional
        Folder of ``im0001.jpg`` …; default ``images/`` beside ``joints.mat``.
    check_images : bool
        Check that the folder holds exactly N numbered images (one directory listing, no
        per-file ``stat``). With False the paths are still set; a missing image then raises
        when the dataset loads it.
    one_based : bool
        Subtract 1 from MATLAB's 1-based coordinates.
    """
    return load_joints_mat(
        path,
        split,
        flag="occluded",
        digits=4,
        images_dir=images_dir,
        check_images=check_images,
        one_based=one_based,
    )


def load_joints_mat(
    path: str | os.PathLike,
    split: str,
    *,
    flag: str,
    digits: int,
    images_dir: str | os.PathLike | None,
    check_images: bool,
    one_based: bool,
) -> PoseAnnotations:
    """The reader that :func:`load_lsp` and :func:`eglpp.pose.datasets.lspet.load_lspet` share:
    a ``joints.mat`` and its numbered images ``im`` + ``digits`` digits + ``.jpg``.

    ``flag`` says what the file's flag 1 means: ``"occluded"`` (LSP: every joint is annotated,
    1 marks an occluded one) or ``"annotated"`` (LSPET: 0 marks a joint that is not annotated,
    which gets ``visible = False`` and coordinates (0, 0)).
    """
    if flag not in ("occluded", "annotated"):
        raise ValueError(f"flag must be 'occluded' or 'annotated', got {flag!r}")
    mat_path = resolve_joints_mat(path)
    xyf = read_joints_mat(mat_path, LSP.n_joints)
    n = len(xyf)
    folder = Path(images_dir) if images_dir is not None else mat_path.parent / "images"
    if check_images:
        check_numbered_images(folder, n, digits, mat_path)
    flagged = xyf[:, :, 2] == 1
    visible = np.ones((n, LSP.n_joints), bool) if flag == "occluded" else flagged
    joints = np.where(visible[:, :, None], xyf[:, :, :2] - (1.0 if one_based else 0.0), 0.0)
    annotations = PoseAnnotations(
        skeleton=LSP,
        joints=joints,
        visible=visible,
        occluded=flagged if flag == "occluded" else None,
        image_paths=image_paths_for(folder, n, digits),
        source=str(mat_path),
    )
    return annotations.subset(split_indices(n, split, mat_path))
