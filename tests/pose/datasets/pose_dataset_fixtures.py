"""Test helpers (not tests): tiny fixtures in the official LSP / LSPET formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def write_jpeg(path: Path, width: int = 24, height: int = 20, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (value, value // 2, 255 - value)).save(path, quality=90)
    return path


def lsp_arrays(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(N, 14, 2) 1-based coordinates and (N, 14) flags with a few ones."""
    xy = rng.uniform(1.0, 20.0, size=(n, 14, 2))
    flags = (rng.random((n, 14)) < 0.3).astype(float)
    return xy, flags


def make_lsp(
    root: Path,
    xy: np.ndarray,
    flags: np.ndarray,
    *,
    layout: str = "xyf",
    digits: int = 4,
    n_images: int | None = None,
) -> Path:
    """Write ``root/joints.mat`` (layout "xyf": 3×14×N, or "jxf": 14×3×N) and N images."""
    root.mkdir(parents=True)
    xyf = np.concatenate([xy, flags[:, :, None]], axis=2)  # (N, J, 3)
    joints = xyf.transpose(2, 1, 0) if layout == "xyf" else xyf.transpose(1, 2, 0)
    scipy.io.savemat(root / "joints.mat", {"joints": joints})
    for i in range(len(xy) if n_images is None else n_images):
        write_jpeg(root / "images" / f"im{i + 1:0{digits}d}.jpg")
    return root


def struct_array(records: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    """A 1×K MATLAB struct array for ``scipy.io.savemat``; absent fields are ``[]``."""
    array = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for k, record in enumerate(records):
        for f in fields:
            array[f][0, k] = record.get(f, np.zeros((0, 0)))
    return array


def mpii_point(joint: int, x: float, y: float, is_visible) -> dict:
    return {"id": joint, "x": x, "y": y, "is_visible": is_visible}


def mpii_rect(points: list[dict] | None, objpos=None, scale=None, head=None) -> dict:
    """One ``annorect``: people without points have only objpos/scale (as in MPII's test set)."""
    rect: dict = {}
    if points is not None:
        rect["annopoints"] = {"point": struct_array(points, ("id", "x", "y", "is_visible"))}
    if objpos is not None:
        rect["objpos"] = {"x": float(objpos[0]), "y": float(objpos[1])}
    if scale is not None:
        rect["scale"] = float(scale)
    if head is not None:
        rect.update(dict(zip(("x1", "y1", "x2", "y2"), map(float, head), strict=True)))
    return rect


def write_mpii_mat(path: Path, images: list[tuple[str, list[dict], int]], singles=None) -> Path:
    """Write a ``RELEASE`` struct like ``mpii_human_pose_v1_u12_1.mat``.

    ``images``: (name, annorect dicts, img_train) per image; ``singles``: per image, the 1-based
    indices of its single people.
    """
    rect_fields = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
    annolist = struct_array(
        [
            {
                "image": {"name": name},
                "annorect": struct_array(rects, rect_fields) if rects else np.zeros((0, 0)),
                "frame_sec": np.zeros((0, 0)),
                "vididx": np.zeros((0, 0)),
            }
            for name, rects, _ in images
        ],
        ("image", "annorect", "frame_sec", "vididx"),
    )
    single = np.empty((len(images), 1), dtype=object)
    for i in range(len(images)):
        chosen = [] if singles is None else singles[i]
        single[i, 0] = np.array(chosen, dtype=float).reshape(-1, 1)
    release = {
        "annolist": annolist,
        "img_train": np.array([[t for _, _, t in images]], dtype=float),
        "single_person": single,
        "version": "12",
    }
    scipy.io.savemat(path, {"RELEASE": release})
    return path
