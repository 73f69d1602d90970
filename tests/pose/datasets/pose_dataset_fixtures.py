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
