"""The Label Studio labelling config of a skeleton, and keypoints in Label Studio's results.

:func:`label_config` is one ``KeyPointLabels`` on an ``Image``, one label per joint in eglpp's
joint names, a per-region ``Choices`` named ``visibility`` with the one choice ``occluded``
(shown when a joint is selected: tick it for a joint that is hidden but whose place is known,
COCO's v = 1), and a ``Header`` showing why eglpp chose the image. Label Studio gives keypoints
in percent of the image (x = 0 the left edge, 100 the right edge), so a joint at pixel index u
is at x = 100 (u + 0.5) / width.

In a result, a joint is a ``keypointlabels`` region; its occlusion is a ``choices`` result of
the visibility control with the region's ``id`` (Label Studio's per-region results). A clicked
joint is visible (v = 2) unless its region is ticked occluded (v = 1); a joint not clicked is not
labelled (v = 0). A project whose config has no such control (made before eglpp had it, or by
hand) still works: every clicked joint is then visible (``ProjectJoints.visibility`` is None).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np

from eglpp.pose.skeleton import BUILT_IN, Skeleton
from eglpp.practitioner.coco import joint_of
from eglpp.practitioner.label_studio import LabelStudioError

__all__ = [
    "OCCLUDED",
    "ProjectJoints",
    "label_config",
    "project_joints",
    "keypoint_result",
    "annotation_keypoints",
]

#: The choice of the visibility control that marks a joint occluded (v = 1).
OCCLUDED = "occluded"
_COLOURS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
            "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000",
            "#aaffc3", "#808000")  # fmt: skip


def label_config(skeleton: Skeleton) -> str:
    """The labelling config XML of ``skeleton`` (see the module docstring)."""
    labels = "\n".join(
        f"    <Label value={quoteattr(name)} background={quoteattr(_COLOURS[j % 16])}/>"
        for j, name in enumerate(skeleton.joints)
    )
    return (
        "<View>\n"
        '  <Header value="$eglpp_reasons"/>\n'
        '  <KeyPointLabels name="joints" toName="image" strokeWidth="2">\n'
        f"{labels}\n"
        "  </KeyPointLabels>\n"
        '  <Choices name="visibility" toName="image" perRegion="true" choice="multiple"\n'
        '           visibleWhen="region-selected" showInline="true">\n'
        f'    <Choice value="{OCCLUDED}"/>\n'
        "  </Choices>\n"
        '  <Image name="image" value="$image" zoom="true" zoomControl="true"/>\n'
        "</View>\n"
    )


@dataclass(frozen=True)
class ProjectJoints:
    """A project's keypoint control: its ``from_name``/``to_name`` and each label's joint; the
    ``from_name`` of its per-region visibility control and that control's occluded choice (None
    where the config has none)."""

    from_name: str
    to_name: str
    joint: dict[str, int]  # label -> skeleton position (labels that are no joint: absent)
    label: dict[int, str]  # skeleton position -> the project's label for it
    visibility: str | None = None
    occluded: str = OCCLUDED


def _skeleton_flag(skeleton: Skeleton, source: object) -> str:
    """What ``label-studio-config --skeleton`` takes to write ``skeleton``'s config."""
    if skeleton.name in BUILT_IN and BUILT_IN[skeleton.name] == skeleton:
        return skeleton.name
    return f"{source} (a COCO file with the {skeleton.name} keypoints)" if source else (
        f"labelled.json (your COCO file with the {skeleton.name} keypoints)")  # fmt: skip


def project_joints(project: dict, skeleton: Skeleton, source: object = None) -> ProjectJoints:
    """The ``KeyPointLabels`` of ``project``'s labelling config, every joint of ``skeleton``
    one of its labels (else a :class:`LabelStudioError` naming the missing joints and the
    config to make: ``--skeleton NAME`` for a built-in skeleton, else ``--skeleton`` a COCO
    file that holds it, ``source`` where given), and its per-region ``Choices`` with an
    ``occluded`` choice, if any."""
    where = f"--project {project.get('id')} ({project.get('title', '')!r})"
    try:
        root = ET.fromstring(project.get("label_config") or "")
    except ET.ParseError as exc:
        raise LabelStudioError(f"{where}: its labelling config is not XML ({exc})") from None
    controls = [c for c in root.iter("KeyPointLabels")]
    if not controls:
        raise LabelStudioError(
            f"{where}: its labelling config has no KeyPointLabels; make the project with "
            "eglpp label-studio-config --create-project TITLE"
        )
    control = controls[0]
    joint, label = {}, {}
    for tag in control.iter("Label"):
        name = tag.get("value", "")
        j = joint_of(name, skeleton)
        if j is not None:
            joint[name] = j
            label.setdefault(j, name)
    missing = [n for j, n in enumerate(skeleton.joints) if j not in label]
    if missing:
        given = ", ".join(t.get("value", "") for t in control.iter("Label")) or "none"
        raise LabelStudioError(
            f"{where}: its labelling config lacks the {skeleton.name} joint(s) "
            f"{', '.join(missing)} (labels: {given}); "
            f"see eglpp label-studio-config --skeleton {_skeleton_flag(skeleton, source)}"
        )
    to_name = control.get("toName", "")
    visibility, occluded = None, OCCLUDED
    for choices in root.iter("Choices"):
        values = [c.get("value", "") for c in choices.iter("Choice")]
        hit = [v for v in values if v.strip().lower() == OCCLUDED]
        per_region = choices.get("perRegion", "").lower() == "true"
        if per_region and choices.get("toName") == to_name and hit:
            visibility, occluded = choices.get("name", ""), hit[0]
            break
    return ProjectJoints(control.get("name", ""), to_name, joint, label, visibility, occluded)


def keypoint_result(joints: np.ndarray, flags: np.ndarray, size: tuple[int, int],
                    names: ProjectJoints) -> list[dict]:  # fmt: skip
    """Label Studio results of the labelled joints (J, 2) px indices: a ``keypointlabels``
    region each, and for an occluded one (v = 1) its visibility choice (where the project has
    the control)."""
    w, h = size
    result = []
    for j in range(len(flags)):
        if flags[j] <= 0:
            continue
        where = {"id": f"j{j}", "to_name": names.to_name, "original_width": int(w),
                 "original_height": int(h), "image_rotation": 0}  # fmt: skip
        point = {"x": 100.0 * (float(joints[j, 0]) + 0.5) / w,
                 "y": 100.0 * (float(joints[j, 1]) + 0.5) / h, "width": 1.0}  # fmt: skip
        result.append({**where, "from_name": names.from_name, "type": "keypointlabels",
                       "value": {**point, "keypointlabels": [names.label[j]]}})  # fmt: skip
        if flags[j] == 1 and names.visibility:
            result.append({**where, "from_name": names.visibility, "type": "choices",
                           "value": {**point, "choices": [names.occluded]}})  # fmt: skip
    return result


def _occluded_regions(ann: dict, names: ProjectJoints) -> set:
    """The ids of the regions ticked occluded in an annotation."""
    if not names.visibility:
        return set()
    return {
        item.get("id")
        for item in ann.get("result") or []
        if item.get("type") == "choices" and item.get("from_name") == names.visibility
        and item.get("id") is not None
        and names.occluded in ((item.get("value") or {}).get("choices") or [])
    }  # fmt: skip


def annotation_keypoints(ann: dict, size: tuple, names: ProjectJoints, J: int,
                         where: str) -> np.ndarray:  # fmt: skip
    """(J, 3) keypoints (x, y px indices, v) of one Label Studio annotation; ``size`` the
    image's (width, height) where a result lacks its own."""
    kp = np.zeros((J, 3))
    occluded = _occluded_regions(ann, names)
    for item in ann.get("result") or []:
        if item.get("type") != "keypointlabels" or item.get("from_name") != names.from_name:
            continue  # another control's result (a comment, a box): not a joint
        value = item.get("value") or {}
        labels = value.get("keypointlabels") or []
        label = labels[0] if labels else None
        if label not in names.joint:
            raise LabelStudioError(
                f"{where}: annotation {ann.get('id')} has a keypoint labelled {label!r}, which "
                f"is no joint of the project's skeleton (labels: {', '.join(names.joint)})"
            )
        j = names.joint[label]
        if kp[j, 2] > 0:
            raise LabelStudioError(
                f"{where}: annotation {ann.get('id')} places joint {label!r} twice"
            )
        w = item.get("original_width") or size[0]
        h = item.get("original_height") or size[1]
        v = 1 if item.get("id") in occluded else 2
        kp[j] = (float(value["x"]) / 100 * w - 0.5, float(value["y"]) / 100 * h - 0.5, v)
    return kp
