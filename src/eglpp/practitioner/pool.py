"""The unlabelled pool of ``eglpp select``: a folder of images or a list with person boxes.

- a **folder**: every image in it (``.jpg .jpeg .png .bmp .webp .tif .tiff``, sub-folders
  included), sorted by relative path; each image is one person, cropped whole (the images are
  person crops already): its box is the whole image, grown to the input's aspect ratio;
- a **CSV** list with a header: column ``image`` and optionally ``x, y, width, height`` (a COCO
  box in continuous pixel coordinates); one row per person, so an image may appear with several
  boxes;
- a **JSON** list: either ``[{"image": ..., "bbox": [x, y, w, h]}, ...]`` (``bbox`` optional) or
  a COCO file (``images``, optionally ``annotations`` with a ``bbox`` each: one person per
  annotation; images without annotations are cropped whole).

Relative image paths in a list are resolved against the list's folder. Nothing is decoded by
:func:`read_pool`, and a listed file that does not exist is kept:
:func:`~eglpp.practitioner.chunks.unreadable` tells, for
a chunk of the pool at a time, which items cannot be read (missing, empty, truncated or not an
image) and why, so that ``eglpp select`` skips them. :meth:`Pool.dataset` yields crops one at a
time (the pose dataset contract); an image that does not decode there raises a ValueError
naming the image and where the pool listed it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from eglpp.io import read_json
from eglpp.pose.datasets.base import PoseAnnotations
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.preprocess import Normalization
from eglpp.pose.skeleton import Skeleton
from eglpp.practitioner.coco import BOX_SCALE, bbox_to_crop

__all__ = ["IMAGE_SUFFIXES", "Pool", "read_pool"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Pool:
    """N pool items: image files, optional person boxes and where each item was listed.

    Attributes
    ----------
    root : Path
        The folder (or the list's folder) names are relative to.
    names : list of str
        The image as the pool names it (relative to ``root`` where possible): the file name an
        annotation tool will see.
    paths : list of Path
        The resolved image files.
    boxes : (N, 4) float array
        COCO boxes [x, y, w, h]; NaN rows: crop the whole image.
    where : list of str
        E.g. ``"pool.csv line 4"``, for error messages.
    source : str
        The folder or list file.
    """

    root: Path
    names: list[str]
    paths: list[Path]
    boxes: np.ndarray
    where: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    def keys(self) -> list[str]:
        """One identifier per item: the resolved path, plus ``#k`` for the k-th box of an image."""
        seen: dict[Path, int] = {}
        keys = []
        for path in self.paths:
            k = seen.get(path, 0)
            seen[path] = k + 1
            keys.append(str(path.resolve()) + (f"#{k}" if k else ""))
        return keys

    def subset(self, indices: ArrayLike) -> Pool:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return Pool(
            self.root,
            [self.names[i] for i in idx],
            [self.paths[i] for i in idx],
            self.boxes[idx],
            [self.where[i] for i in idx],
            self.source,
        )

    def dataset(
        self,
        skeleton: Skeleton,
        input_size: int | tuple[int, int],
        box_scale: float = BOX_SCALE,
        normalize: Normalization | None = None,
    ) -> ImagePoseDataset:
        """The items as a pose dataset (no joints: ``visible`` all False), decoded lazily; an
        image that cannot be read raises ``ValueError`` naming its pool entry. ``normalize``:
        what the network takes (None: RGB in [0, 1], also what a drawing needs)."""

        n, J = len(self), skeleton.n_joints
        centers = np.full((n, 2), np.nan, np.float32)
        scales = np.full((n, 2), np.nan, np.float32)  # (w, h) of each box
        has_box = np.isfinite(self.boxes).all(axis=1)
        for i in np.flatnonzero(has_box):
            centers[i], scales[i] = bbox_to_crop(self.boxes[i], box_scale)
        annotations = PoseAnnotations(
            skeleton=skeleton,
            joints=np.zeros((n, J, 2), np.float32),
            visible=np.zeros((n, J), bool),
            image_paths=list(self.paths),
            centers=centers,
            scales=scales,
            source=self.source,
        )
        return ImagePoseDataset(
            annotations, input_size=input_size, where=self.where, normalize=normalize
        )


def _box(values, where: str) -> np.ndarray:
    try:
        box = np.asarray([float(v) for v in values], np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: box {values!r} is not four numbers x, y, w, h") from None
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"{where}: box {values!r} must be four finite numbers with w, h > 0")
    return box


def _folder(root: Path) -> Pool:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"--pool {root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    names = [p.relative_to(root).as_posix() for p in files]
    boxes = np.full((len(files), 4), np.nan)
    return Pool(root, names, files, boxes, [f"{root}/{n}" for n in names], str(root))


def _csv(path: Path) -> list[tuple[str, np.ndarray | None, str]]:
    try:
        return _csv_rows(path)
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: not a readable CSV pool list ({err})") from err


def _csv_rows(path: Path) -> list[tuple[str, np.ndarray | None, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        if "image" not in cols:
            raise ValueError(f"{path}: CSV pool list needs a header with column 'image'")
        box_cols = ("x", "y", "width", "height")
        has_box = all(c in cols for c in box_cols)
        rows = []
        for line, row in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            if not row["image"]:
                raise ValueError(f"{where}: empty 'image'")
            empty = has_box and all(not (row[c] or "").strip() for c in box_cols)
            box = _box([row[c] for c in box_cols], where) if has_box and not empty else None
            rows.append((row["image"], box, where))
    return rows


def _coco_id(value: object, what: str) -> object:
    """A COCO id (an integer, or absent); anything else raises ValueError naming ``what``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{what} must be an integer, got {value!r:.40}")
    return value


def _json(path: Path) -> list[tuple[str, np.ndarray | None, str]]:

    data = read_json(path)
    rows = []
    if isinstance(data, dict) and isinstance(data.get("images"), list):  # COCO
        per_image: dict = {}
        annotations = data.get("annotations") or []
        if not isinstance(annotations, list):
            raise ValueError(f"{path}: 'annotations' must be a list of COCO annotations")
        for k, ann in enumerate(annotations):
            if isinstance(ann, dict) and "bbox" in ann:
                key = _coco_id(ann.get("image_id"), f"{path}: annotations[{k}]: field 'image_id'")
                per_image.setdefault(key, []).append((k, ann["bbox"]))
        for k, im in enumerate(data["images"]):
            if not isinstance(im, dict) or not isinstance(im.get("file_name"), str):
                raise ValueError(f"{path}: images[{k}]: field 'file_name' is missing")
            _coco_id(im.get("id"), f"{path}: images[{k}]: field 'id'")
            for a, box in per_image.get(im.get("id"), [(None, None)]):
                where = f"{path.name} images[{k}]" + ("" if a is None else f" annotations[{a}]")
                rows.append((im["file_name"], None if box is None else _box(box, where), where))
        return rows
    if not isinstance(data, list):
        raise ValueError(f"{path}: JSON pool list must be a list of {{'image', 'bbox'}} or COCO")
    for k, entry in enumerate(data):
        where = f"{path.name}[{k}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
            raise ValueError(f"{where}: entry must be an object with a string 'image'")
        box = entry.get("bbox")
        rows.append((entry["image"], None if box is None else _box(box, where), where))
    return rows


def read_pool(path: str | Path) -> Pool:
    """A pool from a folder of images or a CSV/JSON list (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _folder(path)
    if not path.is_file():
        raise FileNotFoundError(f"--pool {path}: no such folder or list file")
    if path.suffix.lower() == ".csv":
        rows = _csv(path)
    elif path.suffix.lower() == ".json":
        rows = _json(path)
    else:
        raise ValueError(f"--pool {path}: expected a folder, a .csv or a .json list")
    if not rows:
        raise ValueError(f"--pool {path}: the list is empty")
    root = path.parent
    paths = [Path(name) if Path(name).is_absolute() else root / name for name, _, _ in rows]
    boxes = np.stack([np.full(4, np.nan) if b is None else b for _, b, _ in rows])
    return Pool(root, [n for n, _, _ in rows], paths, boxes, [w for _, _, w in rows], str(path))
