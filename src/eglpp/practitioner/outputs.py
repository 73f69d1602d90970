"""What ``eglpp select`` writes: the selection table, a COCO file to annotate, a contact sheet.

- ``selection.csv``: rank, image, score and the top labelled neighbours of each selected image —
  for EGL++ its most probable neighbours with p(j|i) (the weights of Eq. 12), for the other
  strategies the nearest labelled images in embedding space with their Euclidean distance;
- ``scores.csv``: every candidate's score and, where selected, its rank;
- ``selection_coco.json``: the selected images with one annotation each, holding the model's
  predicted keypoints as pre-annotations (``pre_annotate="predicted"``, every joint v = 2, to
  correct in the tool) or no keypoints (``"empty"``, every joint v = 0), and the person box whose
  crop was scored, inside the image (import it back unchanged and the crop is the same; a listed
  box that reached outside its image is clipped to it);
- ``contact_sheet.png``: the first ``sheet_rows`` selected images (the title says how many of
  the selection), each with its predicted pose (yellow) beside its neighbours with their
  labelled poses (cyan), a legend saying so;
- ``skipped.json``: the candidates whose image cannot be read (never scored nor selected), each
  ``{"image", "path", "where", "reason"}``; ``[]`` when every image was read.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from eglpp.affinity import nearest_labelled
from eglpp.io import atomic_write_json, atomic_write_text, save_figure
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.transforms import crop_affine, crop_width, person_box
from eglpp.pose.draw import LABEL_COLOUR, PREDICTION_COLOUR, draw_pose, pose_grid
from eglpp.pose.skeleton import Skeleton
from eglpp.practitioner.coco import bbox_to_crop, coco_document, crop_to_bbox, keypoint_entry
from eglpp.practitioner.labelled import LabelledSet, image_size
from eglpp.practitioner.pool import Pool
from eglpp.practitioner.select import Scored, SelectConfig

__all__ = [
    "neighbours_of",
    "write_tables",
    "write_skipped",
    "selection_coco",
    "contact_sheet",
    "original_crop",
]


def neighbours_of(scored: Scored, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(labelled positions (B, n'), weights (B, n'), "p" or "distance") for the selected rows."""

    if "neighbours" in scored.details and "p" in scored.details:
        nb, p = scored.details["neighbours"][query], scored.details["p"][query]
        order = np.argsort(-p, axis=1, kind="stable")[:, :n]
        return np.take_along_axis(nb, order, 1), np.take_along_axis(p, order, 1), "p"
    sq, nb = nearest_labelled(scored.embeddings[query], scored.embeddings_labelled, n)
    return nb, np.sqrt(sq), "distance"


def write_tables(
    out: Path,
    scored: Scored,
    query: np.ndarray,
    nb: np.ndarray,
    weight: np.ndarray,
    kind: str,
    labelled_names: list[str],
) -> None:
    """``selection.csv`` (selected, best first) and ``scores.csv`` (every candidate)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    name = "neighbour" if kind == "p" else "nearest"
    header = ["rank", "image", "score"]
    for k in range(1, nb.shape[1] + 1):
        header += [f"{name}_{k}", f"{kind}_{k}"]
    writer.writerow(header)
    for r, i in enumerate(query):
        row = [r + 1, scored.pool.names[i], f"{scored.scores[i]:.6g}"]
        for j, w in zip(nb[r], weight[r], strict=True):
            row += [labelled_names[j], f"{w:.4f}"]
        writer.writerow(row)
    atomic_write_text(out / "selection.csv", buf.getvalue())
    rank = np.zeros(len(scored.scores), np.int64)
    rank[query] = np.arange(1, len(query) + 1)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", "score", "rank"])
    for i, (n, s) in enumerate(zip(scored.pool.names, scored.scores, strict=True)):
        writer.writerow([n, f"{s:.6g}", rank[i] or ""])
    atomic_write_text(out / "scores.csv", buf.getvalue())


def write_skipped(out: Path, skipped: list[dict]) -> None:
    """``skipped.json``: the unreadable candidates (written every run, so never stale)."""
    atomic_write_json(out / "skipped.json", skipped)


def original_crop(
    pool: Pool, i: int, input_size: int | tuple[int, int], box_scale: float
) -> tuple[np.ndarray, list[float], tuple[int, int]]:
    """(affine (2, 3) original px → input px, COCO person box inside the image, image size) of
    pool item i. The box turns back into the same crop (:func:`bbox_to_crop`), unless a listed
    box reached outside the image: it is clipped to it. Without a box, the crop is the whole
    image (grown to the input's aspect) and the box its middle 1 / ``box_scale``."""
    size = image_size(pool.paths[i])
    if size is None:
        raise ValueError(f"pool item {i} ({pool.where[i]}): cannot read image {pool.paths[i]}")
    center = scale = None
    if np.isfinite(pool.boxes[i]).all():
        center, scale = bbox_to_crop(pool.boxes[i], box_scale)
    J = 1
    center, extent = person_box(np.zeros((J, 2)), np.zeros(J, bool), size, center=center,
                                scale=scale, bbox_scale=box_scale)  # fmt: skip
    affine = crop_affine(center, crop_width(extent, input_size), input_size)
    return affine, crop_to_bbox(center, extent, box_scale, size), size


def selection_coco(
    scored: Scored, query: np.ndarray, skeleton: Skeleton, config: SelectConfig, info: dict
) -> dict:
    """The COCO keypoints document of the selected images (see the module docstring)."""
    images, annotations = [], []
    J = skeleton.n_joints
    for r, i in enumerate(query, start=1):
        affine, bbox, (w, h) = original_crop(
            scored.pool, int(i), config.input_size, config.box_scale
        )
        images.append(
            {
                "id": r,
                "file_name": scored.pool.names[i],
                "width": w,
                "height": h,
                "eglpp_path": str(scored.pool.paths[i].resolve()),
            }
        )
        if config.pre_annotate == "predicted":
            inverse = np.linalg.inv(np.vstack([affine, [0.0, 0.0, 1.0]]))[:2]
            u = scored.joints[i].astype(np.float64)
            joints = u @ inverse[:, :2].T + inverse[:, 2]
            flags = np.full(J, 2)
        else:
            joints, flags = np.zeros((J, 2)), np.zeros(J, np.int64)
        annotations.append(
            keypoint_entry(
                r,
                r,
                joints,
                flags,
                bbox,
                score=round(float(scored.scores[i]), 6),
                eglpp_pre_annotation=config.pre_annotate,
            )
        )
    info = {"images_root": str(scored.pool.root.resolve()), **info}
    return coco_document(images, annotations, skeleton, info)


def contact_sheet(
    path: Path,
    scored: Scored,
    query: np.ndarray,
    nb: np.ndarray,
    weight: np.ndarray,
    kind: str,
    labelled: LabelledSet,
    config: SelectConfig,
) -> Path:
    """Save the contact sheet of the first ``config.sheet_rows`` selected images: each with its
    predicted pose beside its labelled neighbours with their labelled poses; the title says
    how many of the selection it shows and the legend what the colours are."""

    rows = query[: config.sheet_rows]
    skeleton = labelled.annotations.skeleton
    shown = scored.pool.subset(rows).dataset(skeleton, config.input_size, config.box_scale)
    lab = ImagePoseDataset(labelled.annotations, input_size=config.input_size, train=False)
    what = "most probable labelled neighbours" if kind == "p" else "nearest labelled images"
    n, total = len(rows), len(query)
    rest = f"; the other {total - n}: selection.csv (--sheet-rows shows more)" if n < total else ""
    title = (
        f"{config.strategy.name}: {'all ' if n == total else ''}{n} of the {total} selected "
        f"images, best first (left column),\nbeside their {what}{rest}"
    )
    fig, axes = pose_grid(n, 1 + nb.shape[1], title)
    for r, i in enumerate(rows):
        caption = f"#{r + 1} {Path(scored.pool.names[i]).name[:22]}\nscore {scored.scores[i]:.3g}"
        draw_pose(axes[r, 0], shown[r]["image"].numpy(), scored.joints[i], None, skeleton.limbs,
                  caption, PREDICTION_COLOUR)  # fmt: skip
        for c, (j, w) in enumerate(zip(nb[r], weight[r], strict=True), start=1):
            it = lab[int(j)]
            label = f"p(j|i) = {w:.2f}" if kind == "p" else f"distance {w:.3g}"
            draw_pose(axes[r, c], it["image"].numpy(), it["joints"].numpy(),
                      it["visible"].numpy(), skeleton.limbs,
                      f"{Path(labelled.names[j]).name[:22]}\n{label}", LABEL_COLOUR)  # fmt: skip
    return save_figure(fig, path)
