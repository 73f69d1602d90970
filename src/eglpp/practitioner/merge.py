"""``eglpp import``: merge annotations returned by an annotation tool into the labelled set.

The returned COCO file is checked against the labelled set and the selection it answers
(``selection_coco.json`` of ``eglpp select``): same skeleton (joint order may differ: joints are
matched by name), every image one of the selection (matched by ``file_name``, else by base name,
since tools may prefix folders), none already labelled, no image twice, every annotation with
3·J keypoint values and at least one labelled joint. Returned images without annotations are
skipped (reported). A returned image already in the labelled set with the same people (every
value within :data:`UNCHANGED_ATOL`) was merged before, e.g. by an import from the same tool
into the file now given as ``--labelled``: it is skipped (reported as ``already_merged``); with
other keypoints it is refused (eglpp never replaces a label). A returned person whose keypoints
are still the model's predicted pre-annotation (every value within :data:`UNCHANGED_ATOL`) was
not corrected: such people are refused unless ``accept_unchanged`` (``--accept-unchanged``),
since merging them would make the model's guesses ground truth; ``skip_unchanged`` leaves them
out instead (reported as ``skipped_unchanged``: Label Studio's import, which lists their tasks
as still open). The merged file is COCO keypoints in the labelled set's joint order, with image
file names relative to the merged file's folder.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from eglpp.io import atomic_write_json
from eglpp.pose.datasets.base import (
    AnnotationError,
    PoseAnnotations,
    check_joints_inside,
    image_size,
)
from eglpp.practitioner.coco import (
    BOX_SCALE,
    CocoFile,
    coco_category,
    coco_document,
    image_root,
    keypoint_entry,
    read_coco,
)
from eglpp.practitioner.labelled import (
    LabelledSet,
    load_labelled,
    relative_name,
    to_coco_entries,
)

__all__ = ["merge_annotations", "UNCHANGED_ATOL"]

#: A returned keypoint value (x, y in px, or v) within this of the pre-annotation is unchanged.
UNCHANGED_ATOL = 0.01


def _selection(path: Path) -> tuple[CocoFile, dict[str, dict], dict[str, list[dict]]]:
    path = path / "selection_coco.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"--selection {path}: no such file (eglpp select writes it)")
    sel = read_coco(path, require_keypoints=False)
    by_name, by_base = {}, {}
    for im in sel.images:
        by_name[im["file_name"]] = im
        by_base.setdefault(Path(im["file_name"]).name, []).append(im)
    return sel, by_name, by_base


def _reorder(kp: list, src_order: np.ndarray, dst_order: np.ndarray) -> np.ndarray:
    """(J, 3) keypoints from one file's joint order to another's (both skeleton positions)."""
    kp = np.asarray(kp, np.float64).reshape(-1, 3)
    in_skeleton = np.zeros_like(kp)
    in_skeleton[src_order] = kp
    return in_skeleton[dst_order]


def merge_annotations(
    labelled: str | Path,
    returned: str | Path,
    selection: str | Path,
    out: str | Path,
    *,
    images_root: str | Path | None = None,
    box_scale: float = BOX_SCALE,
    accept_unchanged: bool = False,
    skip_unchanged: bool = False,
) -> dict:
    """Write the merged COCO file ``out``; returns counts (see ``eglpp import``) and the file
    names of the images ``already_merged`` and ``skipped_unchanged``.

    Raises AnnotationError when a returned person is its unchanged pre-annotation, unless
    ``accept_unchanged`` or ``skip_unchanged``."""
    out = Path(out)
    lab = load_labelled(labelled, images_root=images_root, box_scale=box_scale)
    skeleton = lab.annotations.skeleton
    images, annotations, category, out_order = _labelled_entries(lab, images_root, box_scale, out)
    sel, by_name, by_base = _selection(Path(selection))
    ret = read_coco(returned, require_keypoints=True, known=(skeleton,))
    for other, what in ((sel, "the selection"), (ret, "the returned file")):
        if other.skeleton != skeleton:
            raise AnnotationError(
                f"{other.path}: {what} has {other.skeleton.name} joints "
                f"({other.skeleton.n_joints}) but the labelled set {labelled} has "
                f"{skeleton.name} joints ({skeleton.n_joints})"
            )
    matched = _match_images(ret, sel, by_name, by_base)
    ret, merged = _without_merged(ret, matched, lab, labelled)
    _check_returned_joints(ret, matched)
    unchanged = _unchanged(ret, sel, matched, out_order)
    if unchanged and not (accept_unchanged or skip_unchanged):
        _refuse_unchanged(ret, unchanged, matched, sel)
    left_out = [] if accept_unchanged else unchanged
    ret, skipped_unchanged = _without_people(ret, left_out, matched)
    new_ids = _append_returned(ret, sel, matched, images, annotations, out_order, out)
    skipped = [im["file_name"] for im in ret.images if im["id"] not in new_ids]
    src = str(ret.path)
    doc = coco_document(images, annotations, skeleton, {"merged_from": [str(labelled), src]})
    doc["categories"] = [category]
    atomic_write_json(out, doc)
    return {
        "labelled_images": len(lab.coco.images)
        if lab.coco
        else len(set(lab.annotations.image_paths)),
        "added_images": len(new_ids),
        "added_people": len(ret.annotations),
        "skipped_images": skipped,
        "unchanged_pre_annotations": len(unchanged) - len(left_out),
        "accepted_unchanged": bool(unchanged) and accept_unchanged,
        "already_merged": merged,
        "skipped_unchanged": skipped_unchanged,
        "out": str(out),
    }


def _labelled_entries(
    lab: LabelledSet, images_root: str | Path | None, box_scale: float, out: Path
) -> tuple[list[dict], list[dict], dict, np.ndarray]:
    """The labelled set's COCO images (file names relative to ``out``'s folder), annotations,
    category and joint order: copied from its COCO file, or written from its annotations."""
    skeleton = lab.annotations.skeleton
    if lab.coco is not None:
        root = image_root(lab.coco, images_root)
        images = copy.deepcopy(lab.coco.images)
        for im in images:
            im["file_name"] = relative_name(root / im["file_name"], out.parent)
        annotations = copy.deepcopy(lab.coco.annotations)
        return images, annotations, lab.coco.category, lab.coco.order
    images, annotations = to_coco_entries(lab.annotations, out.parent, box_scale=box_scale)
    return images, annotations, coco_category(skeleton), np.arange(skeleton.n_joints)


def _match_images(
    ret: CocoFile,
    sel: CocoFile,
    by_name: dict[str, dict],
    by_base: dict[str, list[dict]],
) -> dict[int, dict]:
    """Returned image id -> its selection image (with ``path``); errors for an image not
    selected or selected twice."""
    src, sel_root = str(ret.path), image_root(sel)
    matched: dict[int, dict] = {}
    seen: dict[int, str] = {}
    for k, im in enumerate(ret.images):
        name = im["file_name"]
        hit = by_name.get(name) or (
            by_base[Path(name).name][0] if len(by_base.get(Path(name).name, ())) == 1 else None
        )
        if hit is None:
            raise AnnotationError(
                f"{src}: images[{k}] file_name {name!r} is not in the selection {sel.path}"
            )
        if hit["id"] in seen:
            raise AnnotationError(
                f"{src}: images[{k}] ({name!r}) and {seen[hit['id']]!r} are the same selected "
                f"image {hit['file_name']!r}"
            )
        seen[hit["id"]] = name
        path = Path(hit.get("eglpp_path") or sel_root / hit["file_name"])
        matched[im["id"]] = {**hit, "path": path, "index": k}
    return matched


def _people(kp: np.ndarray) -> np.ndarray:
    """(N, J, 3) keypoints in a canonical order (for comparing two sets of people)."""
    return kp[np.lexsort(kp.reshape(len(kp), -1).T[::-1])] if len(kp) else kp


def _without_merged(
    ret: CocoFile, matched: dict[int, dict], lab: LabelledSet, labelled: str | Path
) -> tuple[CocoFile, list[str]]:
    """``ret`` without the images already in the labelled set with the same people (merged
    before), and their file names; an image there with other people is an error."""
    ann = lab.annotations
    flags = np.where(ann.occluded, 1, np.where(ann.visible, 2, 0)) if ann.occluded is not None \
        else np.where(ann.visible, 2, 0)  # fmt: skip
    held: dict[Path, list[np.ndarray]] = {}
    for n, path in enumerate(ann.image_paths):
        held.setdefault(path.resolve(), []).append(np.c_[ann.joints[n], flags[n]])
    J = ret.skeleton.n_joints
    merged = []
    for im in ret.images:
        hit = matched[im["id"]]
        there = held.get(hit["path"].resolve())
        if there is None:
            continue
        back = [_reorder(a["keypoints"], ret.order, np.arange(J))
                for a in ret.annotations if a["image_id"] == im["id"]]  # fmt: skip
        back = [b * np.c_[b[:, 2:] > 0, b[:, 2:] > 0, np.ones(J)] for b in back]  # v = 0: (0, 0)
        same = len(back) == len(there) and np.allclose(
            _people(np.stack(back)), _people(np.stack(there)), rtol=0.0, atol=2 * UNCHANGED_ATOL
        )  # the merged file rounds to 0.01 px
        if not same:
            raise AnnotationError(
                f"{ret.path}: images[{hit['index']}] ({im['file_name']!r}) is already in the "
                f"labelled set {labelled} with other keypoints: eglpp never replaces a label "
                "(import into the labelled set from before it was merged, or leave it out)"
            )
        merged.append(im["file_name"])
    gone = {im["id"] for im in ret.images if im["file_name"] in set(merged)}
    return _keep(ret, gone), merged


def _keep(ret: CocoFile, gone_images: set, gone_people: frozenset = frozenset()) -> CocoFile:
    """``ret`` without the images of ids ``gone_images`` (and their people) and the people at
    positions ``gone_people``."""
    return dataclasses.replace(
        ret,
        images=[im for im in ret.images if im["id"] not in gone_images],
        annotations=[a for k, a in enumerate(ret.annotations)
                     if a["image_id"] not in gone_images and k not in gone_people],
    )  # fmt: skip


def _without_people(
    ret: CocoFile, positions: list[int], matched: dict[int, dict]
) -> tuple[CocoFile, list[str]]:
    """``ret`` without the people at ``positions`` (and an image left without people), and the
    file names of their images."""
    if not positions:
        return ret, []
    image_ids = {ret.annotations[k]["image_id"] for k in positions}
    kept = {a["image_id"] for k, a in enumerate(ret.annotations) if k not in set(positions)}
    names = [matched[i]["file_name"] for i in sorted(image_ids)]
    return _keep(ret, image_ids - kept, frozenset(positions)), names


def _unchanged(
    ret: CocoFile, sel: CocoFile, matched: dict[int, dict], out_order: np.ndarray
) -> list[int]:
    """Positions in ``ret.annotations`` of the people whose keypoints are their image's
    predicted pre-annotation in the selection (all values within :data:`UNCHANGED_ATOL`)."""
    sel_anns = {a["image_id"]: a for a in sel.annotations}
    unchanged = []
    for k, ann in enumerate(ret.annotations):
        pre = sel_anns.get(matched[ann["image_id"]]["id"])
        if pre is None or not (np.asarray(pre["keypoints"], float) > 0).any():
            continue  # empty pre-annotation: anything returned was typed by the annotator
        kp = _reorder(ann["keypoints"], ret.order, out_order)
        pre_kp = _reorder(pre["keypoints"], sel.order, out_order)
        if np.allclose(pre_kp, kp, rtol=0.0, atol=UNCHANGED_ATOL):
            unchanged.append(k)
    return unchanged


def _refuse_unchanged(
    ret: CocoFile, unchanged: list[int], matched: dict[int, dict], sel: CocoFile
) -> None:
    names = [matched[ret.annotations[k]["image_id"]]["file_name"] for k in unchanged]
    shown = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
    raise AnnotationError(
        f"{ret.path}: {len(unchanged)} of {len(ret.annotations)} returned people are the "
        f"unchanged predicted pre-annotations of {sel.path} ({shown}): the model's guesses, "
        "not labels. Correct them in the annotation tool, delete them from the export, or pass "
        "--accept-unchanged if they are right"
    )


def _check_returned_joints(ret: CocoFile, matched: dict[int, dict]) -> None:
    """Refuse returned people whose joints lie far outside their selected image."""
    if not ret.annotations:
        return
    J = ret.skeleton.n_joints
    kp = np.stack([_reorder(a["keypoints"], ret.order, np.arange(J)) for a in ret.annotations])
    hits = [matched[a["image_id"]] for a in ret.annotations]
    sizes = [
        (hit["width"], hit["height"])
        if {"width", "height"} <= set(hit)
        else image_size(hit["path"])
        for hit in hits
    ]
    people = PoseAnnotations(ret.skeleton, kp[:, :, :2], kp[:, :, 2] > 0, source=str(ret.path))
    names = [f"annotations[{k}] (image {hit['file_name']})" for k, hit in enumerate(hits)]
    check_joints_inside(people, sizes, names)


def _append_returned(
    ret: CocoFile,
    sel: CocoFile,
    matched: dict[int, dict],
    images: list[dict],
    annotations: list[dict],
    out_order: np.ndarray,
    out: Path,
) -> dict[int, int]:
    """Append the returned people (and their images, once each) to ``images`` and
    ``annotations`` with new ids, keypoints in ``out_order``. Returns the new id of each
    returned image id."""
    sel_anns = {a["image_id"]: a for a in sel.annotations}
    next_image = 1 + max((im["id"] for im in images), default=0)
    next_ann = 1 + max((a["id"] for a in annotations), default=0)
    new_ids: dict[int, int] = {}
    for ann in ret.annotations:
        hit = matched[ann["image_id"]]
        if ann["image_id"] not in new_ids:
            new_ids[ann["image_id"]] = next_image
            entry = {"id": next_image, "file_name": relative_name(hit["path"], out.parent)}
            entry.update({k: hit[k] for k in ("width", "height") if k in hit})
            images.append(entry)
            next_image += 1
        kp = _reorder(ann["keypoints"], ret.order, out_order)
        bbox = ann.get("bbox") or (sel_anns.get(hit["id"]) or {}).get("bbox")
        annotations.append(
            keypoint_entry(next_ann, new_ids[ann["image_id"]], kp[:, :2], kp[:, 2], bbox)
        )
        next_ann += 1
    return new_ids
