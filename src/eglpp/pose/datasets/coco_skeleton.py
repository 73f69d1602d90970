"""The skeleton of a COCO keypoints file: its ``categories[0].keypoints`` matched by name to a
known or built-in skeleton (LSP, MPII, COCO-17; any order, case, spacing, ``l_``/``r_`` and a
few aliases), else a skeleton of its own with the category's 1-based ``skeleton`` limbs
(:mod:`eglpp.pose.datasets.coco` reads the rest of the file).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eglpp.pose.datasets.base import AnnotationError
from eglpp.pose.skeleton import (
    BUILT_IN,
    LSP,
    MPII,
    Skeleton,
    canonical_name,
    skeleton_from_keypoints,
)

__all__ = ["NEAR_MISS", "joint_of", "match_skeleton", "category_limbs"]

_ALIASES = {
    LSP.name: {"head": "head_top", "headtop": "head_top", "top_head": "head_top",
               "upper_neck": "neck"},
    MPII.name: {"head": "head_top", "headtop": "head_top", "top_head": "head_top",
                "neck": "upper_neck", "hip": "pelvis", "root": "pelvis", "chest": "thorax"},
}  # fmt: skip


#: A name list that misses a built-in skeleton of its size by at most this many names is
#: refused (a typo) rather than read as a skeleton of its own.
NEAR_MISS = 2


def _aliased(name: str, skeleton: Skeleton) -> str:
    n = canonical_name(name)
    return _ALIASES.get(skeleton.name, {}).get(n, n)


def joint_of(name: str, skeleton: Skeleton) -> int | None:
    """The position in ``skeleton`` of the joint a tool calls ``name`` (matched as
    :func:`match_skeleton` matches names), or None.

    >>> joint_of("Left Wrist", LSP), joint_of("head", MPII), joint_of("tail", LSP)
    (11, 9, None)
    """
    n = _aliased(name, skeleton)
    canon = [canonical_name(j) for j in skeleton.joints]
    return canon.index(n) if n in canon else None


def match_skeleton(
    names: list[str],
    source: str,
    limbs: Sequence | None = None,
    name: str = "custom",
    known: Sequence[Skeleton] = (),
) -> tuple[Skeleton, np.ndarray]:
    """The skeleton whose joints ``names`` are, and ``order`` (J,) with skeleton joint
    ``order[k]`` = ``names[k]``: one of ``known`` or a built-in one (LSP, MPII, COCO-17) in any
    order and spelling, else the skeleton ``name`` of ``names`` in their order with ``limbs``
    (0-based pairs).

    Raises AnnotationError naming ``source`` when the names repeat or miss a built-in skeleton
    of their count by at most :data:`NEAR_MISS` names.
    """
    for skeleton in (*known, *BUILT_IN.values()):
        mapped = [_aliased(n, skeleton) for n in names]
        canon = [canonical_name(j) for j in skeleton.joints]
        if len(mapped) == skeleton.n_joints and sorted(mapped) == sorted(canon):
            return skeleton, np.array([canon.index(n) for n in mapped], np.int64)
        unmatched = [n for n, m in zip(names, mapped, strict=True) if m not in canon]
        if len(names) == skeleton.n_joints and len(unmatched) <= NEAR_MISS:
            raise AnnotationError(
                f"{source}: categories[0].keypoints is nearly the {skeleton.name} skeleton "
                f"({', '.join(skeleton.joints)}) but these names are not its joints: "
                f"{', '.join(map(repr, unmatched)) or '(duplicates)'}; rename them"
            )
    try:
        return skeleton_from_keypoints(name, names, limbs or ()), np.arange(len(names))
    except ValueError as exc:
        raise AnnotationError(f"{source}: categories[0]: {exc}") from None


def category_limbs(category: dict, J: int, src: str) -> list[tuple[int, int]]:
    """The category's ``skeleton`` (1-based keypoint pairs) as 0-based pairs; none: []."""
    limbs = category.get("skeleton") or []
    where = f"{src}: categories[0].skeleton"
    if not isinstance(limbs, list):
        raise AnnotationError(f"{where} must be a list of [a, b] keypoint pairs, got {limbs!r:.60}")
    out = []
    for k, limb in enumerate(limbs):
        ok = isinstance(limb, list) and len(limb) == 2
        ok = ok and all(isinstance(i, int) and not isinstance(i, bool) for i in limb)
        if not ok or not all(1 <= i <= J for i in limb):
            raise AnnotationError(
                f"{where}[{k}] must be two keypoint numbers in 1..{J} (1-based), got {limb!r:.60}"
            )
        out.append((limb[0] - 1, limb[1] - 1))
    return out
