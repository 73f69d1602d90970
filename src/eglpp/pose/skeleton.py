"""Joint orders of the datasets and the left/right pairs that a horizontal flip swaps.

A skeleton is data: LSP's 14, MPII's 16 and COCO's 17 keypoints are built in
(:data:`BUILT_IN`), and :func:`skeleton_from_keypoints` makes one of any keypoint names and
limbs (a COCO file's ``categories[].keypoints`` and ``skeleton``), its flip pairs found by the
names' left/right prefixes (:func:`canonical_name`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Skeleton",
    "LSP",
    "MPII",
    "COCO17",
    "BUILT_IN",
    "TORSO_JOINTS",
    "canonical_name",
    "flip_pairs_by_name",
    "skeleton_from_keypoints",
]

#: The joints a torso-normalised PCK needs (LSP's torso: left shoulder to right hip; the
#: paper's ``max_diagonal`` also takes the other diagonal where the skeleton has it).
TORSO_JOINTS = ("left_shoulder", "right_hip")


@dataclass(frozen=True)
class Skeleton:
    """A joint order: names, the (left, right) index pairs a flip swaps, and drawable limbs."""

    name: str
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    limbs: tuple[tuple[int, int], ...]

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(
                f"{self.name} skeleton has no joint '{joint}' (joints: {', '.join(self.joints)})"
            ) from None

    @property
    def has_torso(self) -> bool:
        """Whether the skeleton has a left shoulder and a right hip (PCK's torso normaliser)."""
        return all(j in self.joints for j in TORSO_JOINTS)

    def flip_permutation(self) -> list[int]:
        """Channel permutation that maps joint i to its mirror joint (itself if unpaired)."""
        perm = list(range(self.n_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


# LSP / LSPET order (14 joints), as in the datasets' README.
LSP = Skeleton(
    name="lsp",
    joints=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "neck",
        "head_top",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9)),
    limbs=(
        (0, 1),
        (1, 2),
        (5, 4),
        (4, 3),
        (2, 3),
        (6, 7),
        (7, 8),
        (11, 10),
        (10, 9),
        (8, 9),
        (8, 2),
        (9, 3),
        (12, 13),
        (8, 12),
        (9, 12),
    ),
)

# MPII order (16 joints), as in the official annotation.
MPII = Skeleton(
    name="mpii",
    joints=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    limbs=(
        (0, 1),
        (1, 2),
        (2, 6),
        (5, 4),
        (4, 3),
        (3, 6),
        (6, 7),
        (7, 8),
        (8, 9),
        (10, 11),
        (11, 12),
        (12, 7),
        (15, 14),
        (14, 13),
        (13, 7),
    ),
)

# COCO's 17 person keypoints and its standard skeleton (person_keypoints_*.json, 0-based here).
COCO17 = Skeleton(
    name="coco17",
    joints=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    limbs=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
)

#: The built-in skeletons by name.
BUILT_IN = {s.name: s for s in (LSP, MPII, COCO17)}


def canonical_name(name: str) -> str:
    """A keypoint name in lower case with ``_`` separators and its side, if any, as a
    ``left_``/``right_`` prefix (``l_``, ``r_`` and ``_left``/``_right`` suffixes too).

    >>> canonical_name("Left Wrist"), canonical_name("r-paw"), canonical_name("ear_left")
    ('left_wrist', 'right_paw', 'left_ear')
    >>> canonical_name("Tail Tip")
    'tail_tip'
    """
    n = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    n = re.sub(r"^r_", "right_", n)
    n = re.sub(r"^l_", "left_", n)
    m = re.fullmatch(r"(\w+?)_(left|right)", n)  # "ankle_left" -> "left_ankle"
    return f"{m.group(2)}_{m.group(1)}" if m else n


def flip_pairs_by_name(joints: tuple[str, ...] | list[str]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs of the joints named ``left_X`` and ``right_X`` (as
    :func:`canonical_name` reads them); a joint without its mirror stays unpaired.

    >>> flip_pairs_by_name(["nose", "right_ear", "L ear", "left_paw"])
    ((2, 1),)
    """
    canon = [canonical_name(j) for j in joints]
    pairs = []
    for i, n in enumerate(canon):
        if n.startswith("left_") and "right_" + n[5:] in canon:
            pairs.append((i, canon.index("right_" + n[5:])))
    return tuple(pairs)


def skeleton_from_keypoints(
    name: str, joints: list[str] | tuple[str, ...], limbs: list | tuple = ()
) -> Skeleton:
    """A skeleton of any keypoint names and 0-based limbs; flip pairs by the names' sides.

    >>> s = skeleton_from_keypoints("mouse", ["snout", "left_ear", "right_ear", "tail"], [(0, 3)])
    >>> s.flip_pairs, s.limbs, s.has_torso
    (((1, 2),), ((0, 3),), False)
    """
    joints = tuple(str(j) for j in joints)
    canon = [canonical_name(j) for j in joints]
    if len(set(canon)) != len(canon):
        dup = sorted({j for j, c in zip(joints, canon, strict=True) if canon.count(c) > 1})
        raise ValueError(f"skeleton {name!r}: keypoint names repeat: {', '.join(dup)}")
    limbs = tuple((int(a), int(b)) for a, b in limbs)
    bad = [limb for limb in limbs if not all(0 <= k < len(joints) for k in limb)]
    if bad:
        raise ValueError(f"skeleton {name!r}: limb {bad[0]} names no keypoint of {len(joints)}")
    return Skeleton(name, joints, flip_pairs_by_name(joints), limbs)
