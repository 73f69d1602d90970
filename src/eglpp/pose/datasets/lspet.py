"""LSP Extended (LSPET) in its official format.

``joints.mat`` holds ``joints`` of shape 14×3×N (columns x, y, flag); the flag is 1 for an
**annotated** joint and 0 for a joint that is not annotated (its coordinates are then ≤ 0) — the
opposite sense to LSP's flag. Unannotated joints get ``visible = False`` (no loss, no metric) and
coordinates (0, 0). Images are ``images/im00001.jpg`` … (5 digits, 1-based). LSPET has no
test split: ``split="all"`` (in the paper it is the unlabelled pool); take subsets with
:meth:`PoseAnnotations.subset`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eglpp.pose.datasets.base import PoseAnnotations
from eglpp.pose.datasets.lsp import (
    check_numbered_images,
    image_paths_for,
    read_joints_mat,
    resolve_joints_mat,
    split_indices,
)
from eglpp.pose.skeleton import LSP

__all__ = ["load_lspet"]


def load_lspet(
    path: str | os.PathLike,
    split: str = "all",
    *,
    images_dir: str | os.PathLike | None = None,
    check_images: bool = True,
    one_based: bool = True,
) -> PoseAnnotations:
    """Load LSPET annotations (and image paths) from a folder holding ``joints.mat``.

    Parameters
    ----------
    path : path
        The dataset folder (with ``joints.mat`` and ``images/``) or the ``.mat`` file itself.
    split : {"all", "train", "test"}
        ``all`` (default); ``train``/``test`` are the first/last half, as for LSP.
    images_dir : path, optional
        Folder of ``im00001.jpg`` …; default ``images/`` beside ``joints.mat``.
    check_images : bool
        Check that the folder holds exactly N numbered images (one directory listing).
    one_based : bool
        Subtract 1 from MATLAB's 1-based coordinates of annotated joints.
    """
    mat_path = resolve_joints_mat(path)
    xyf = read_joints_mat(mat_path, LSP.n_joints)
    n = len(xyf)
    folder = Path(images_dir) if images_dir is not None else mat_path.parent / "images"
    if check_images:
        check_numbered_images(folder, n, 5, mat_path)
    visible = xyf[:, :, 2] == 1
    joints = np.where(visible[:, :, None], xyf[:, :, :2] - (1.0 if one_based else 0.0), 0.0)
    annotations = PoseAnnotations(
        skeleton=LSP,
        joints=joints,
        visible=visible,
        image_paths=image_paths_for(folder, n, 5),
        source=str(mat_path),
    )
    return annotations.subset(split_indices(n, split, mat_path))
