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

from eglpp.pose.datasets.base import PoseAnnotations
from eglpp.pose.datasets.lsp import load_joints_mat

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
    return load_joints_mat(
        path,
        split,
        flag="annotated",
        digits=5,
        images_dir=images_dir,
        check_images=check_images,
        one_based=one_based,
    )
