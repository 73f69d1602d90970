"""Joint orders of the datasets and the left/right pairs that a horizontal flip swaps."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Skeleton", "LSP", "MPII"]


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
