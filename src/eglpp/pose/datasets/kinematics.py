"""Poses for the renderer: a procedural kinematic prior, and pose arrays normalised to one frame.

Every pose here is in LSP's 14-joint order and in the *person frame*: (x, y) with y pointing
down, centred on the bounding box of its joints and scaled so that the box's longer side is 1.
The renderer places a person-frame pose into an image with a per-item scale, shift and rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eglpp.pose.skeleton import LSP, MPII, Skeleton

__all__ = [
    "PoseSet",
    "sample_prior_pose",
    "template_pose",
    "poses_from_array",
    "poses_from_joints_mat",
    "normalise_pose",
    "body_axes",
    "facing_cosine",
]

# MPII joint index for each LSP joint (LSP "neck" ↔ MPII "upper_neck").
_MPII_TO_LSP = (0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9)


@dataclass(frozen=True)
class PoseSet:
    """Poses in the person frame.

    Attributes
    ----------
    poses : ndarray, shape (N, 14, 2)
        Joints (x, y) in LSP order; missing joints are imputed (so every limb can be drawn).
    annotated : ndarray, shape (N, 14), bool
        Whether each joint was given (imputed joints are False and never count as visible).
    """

    poses: np.ndarray
    annotated: np.ndarray

    def __post_init__(self) -> None:
        poses, annotated = np.asarray(self.poses), np.asarray(self.annotated)
        if poses.ndim != 3 or poses.shape[1:] != (14, 2):
            raise ValueError(f"PoseSet.poses: expected shape (N, 14, 2), got {poses.shape}")
        if annotated.shape != poses.shape[:2]:
            raise ValueError(
                f"PoseSet.annotated: expected shape {poses.shape[:2]}, got {annotated.shape}"
            )
        if not np.isfinite(poses).all():
            raise ValueError("PoseSet.poses: contains NaN or infinite coordinates")

    def __len__(self) -> int:
        return len(self.poses)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def normalise_pose(pose: np.ndarray) -> np.ndarray:
    """Centre a (14, 2) pose on its bounding box and scale the box's longer side to 1."""
    lo, hi = pose.min(0), pose.max(0)
    extent = max(float((hi - lo).max()), 1e-6)
    return (pose - (lo + hi) / 2) / extent


def body_axes(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The body's up vector, its image-right perpendicular and the torso length of a pose."""
    mid_hip, neck = pose[2:4].mean(0), pose[12]
    up = neck - mid_hip
    torso = float(np.hypot(*up))
    up = up / torso if torso > 1e-9 else np.array([0.0, -1.0])
    return up, np.array([-up[1], up[0]]), max(torso, 1e-3)


def facing_cosine(pose: np.ndarray) -> float:
    """cos(yaw) of a pose: +1 facing the camera, −1 facing away, 0 in profile.

    Read from the shoulders' (or, when they nearly coincide, the hips') left-right order across
    the torso: facing the camera, the person's right side is on the image's left.
    """
    _, right, torso = body_axes(pose)
    shoulders = float((pose[9] - pose[8]) @ right) / (0.8 * torso)
    hips = float((pose[3] - pose[2]) @ right) / (0.45 * torso)
    value = shoulders if abs(shoulders) >= 0.15 or abs(hips) < 0.15 else hips
    return float(np.clip(value, -1.0, 1.0))


def _limb(start: np.ndarray, angle: float, length: float, side: float) -> np.ndarray:
    """End of a limb leaving `start` at `angle` from straight down, turning outward to `side`."""
    return start + length * np.array([side * np.sin(angle), np.cos(angle)])


def sample_prior_pose(
    rng: np.random.Generator, *, rotation_std_deg: float = 12.0, large_rotation_prob: float = 0.1
) -> np.ndarray:
    """Draw one pose from the procedural kinematic prior, in the person frame.

    Body yaw (front, profile, back) sets the shoulder and hip widths; limb lengths vary per person
    (log-normal) and are foreshortened per segment; joint angles follow anatomical ranges
    (shoulder abduction 0–170°, elbow flexion 0–140°, hip 0–95°, knee 0–130°); the whole body is
    rotated in the image plane by N(0, `rotation_std_deg`) or, with `large_rotation_prob`, by a
    uniform angle (acrobatics, lying down).

    Returns
    -------
    ndarray, shape (14, 2)
    """
    yaw = rng.uniform(-np.pi, np.pi) if rng.random() < 0.5 else rng.normal(0.0, 0.6)
    cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
    length = np.exp(rng.normal(0.0, 0.07, size=5))  # upper arm, forearm, thigh, shin, head
    side_var = np.exp(rng.normal(0.0, 0.03, size=(2, 4)))
    fore = 1.0 - 0.6 * rng.beta(1.0, 3.0, size=(2, 4))  # foreshortening of each segment
    pose = np.zeros((14, 2))
    pose[12] = (rng.normal(0.0, 0.08), -1.0)  # neck; pelvis centre at the origin, torso length 1
    for side, (hip, knee, ankle, shoulder, elbow, wrist) in enumerate(
        ((2, 1, 0, 8, 7, 6), (3, 4, 5, 9, 10, 11))
    ):
        sign = (-1.0 if side == 0 else 1.0) * np.sign(cos_yaw or 1.0)  # image side of this limb
        if abs(cos_yaw) < 0.3:
            sign = rng.choice((-1.0, 1.0))
        width = (1.0 if side else -1.0) * cos_yaw
        pose[hip] = (0.22 * width, 0.0)
        pose[shoulder] = pose[12] + (0.4 * width, 0.12)
        lengths = length[:4] * side_var[side] * fore[side]
        if rng.random() < 0.55:
            arm = abs(rng.normal(0.25, 0.3))
        else:
            arm = rng.uniform(0.0, np.radians(170))
        elbow_flex = rng.uniform(0.0, np.radians(140)) * rng.choice((-1.0, 1.0), p=(0.6, 0.4))
        pose[elbow] = _limb(pose[shoulder], arm, 0.62 * lengths[0], sign)
        pose[wrist] = _limb(pose[elbow], arm + elbow_flex, 0.55 * lengths[1], sign)
        if rng.random() < 0.7:
            leg = rng.normal(0.08, 0.12)
        else:
            leg = rng.uniform(-0.4, np.radians(95))
        knee_flex = abs(rng.normal(0.0, 0.45)) if rng.random() < 0.8 else rng.uniform(0, 2.3)
        knee_sign = -np.sign(sin_yaw or 1.0) * sign if abs(cos_yaw) < 0.7 else rng.choice((-1, 1))
        pose[knee] = _limb(pose[hip], leg, 0.9 * lengths[2], sign)
        pose[ankle] = _limb(pose[knee], leg + knee_sign * knee_flex, 0.85 * lengths[3], sign)
    head_dir = _rotate(np.array([0.0, -1.0]), rng.normal(0.0, 0.25))
    pose[13] = pose[12] + 0.55 * length[4] * head_dir
    if rng.random() < large_rotation_prob:
        angle = rng.uniform(-np.pi, np.pi)
    else:
        angle = np.radians(rng.normal(0.0, rotation_std_deg))
    return normalise_pose(_rotate(pose, angle))


def template_pose() -> np.ndarray:
    """A neutral frontal pose (arms and legs slightly apart) in the person frame, shape (14, 2)."""
    pose = np.zeros((14, 2))
    pose[12] = (0.0, -1.0)
    pose[13] = (0.0, -1.55)
    for side, (hip, knee, ankle, shoulder, elbow, wrist) in enumerate(
        ((2, 1, 0, 8, 7, 6), (3, 4, 5, 9, 10, 11))
    ):
        sign = 1.0 if side else -1.0
        pose[hip] = (0.22 * sign, 0.0)
        pose[shoulder] = (0.4 * sign, -0.88)
        pose[elbow] = _limb(pose[shoulder], 0.3, 0.62, sign)
        pose[wrist] = _limb(pose[elbow], 0.2, 0.55, sign)
        pose[knee] = _limb(pose[hip], 0.08, 0.9, sign)
        pose[ankle] = _limb(pose[knee], 0.0, 0.85, sign)
    return normalise_pose(pose)


def _similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The similarity transform (Umeyama) of `source` (K, 2) onto `target`, as a 3×2 matrix."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sig, vt = np.linalg.svd(t.T @ s)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / max((s**2).sum(), 1e-12))
    linear = (scale * rotation).T
    return np.vstack([linear, mu_t - mu_s @ linear])


def _impute(pose: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """Fill missing joints from the template pose fitted to the annotated ones."""
    template = template_pose()
    if annotated.all():
        return pose
    if annotated.sum() >= 2 and np.ptp(pose[annotated], axis=0).max() > 1e-6:
        fit = _similarity_fit(template[annotated], pose[annotated])
    elif annotated.any():
        fit = np.vstack([np.eye(2), pose[annotated][0] - template[annotated][0]])
    else:
        fit = np.vstack([np.eye(2), np.zeros(2)])
    filled = template @ fit[:2] + fit[2]
    return np.where(annotated[:, None], pose, filled)


def poses_from_array(
    joints: np.ndarray, visible: np.ndarray | None = None, *, skeleton: Skeleton = LSP
) -> PoseSet:
    """Normalise any pose array into the person frame, imputing missing joints.

    Parameters
    ----------
    joints : ndarray, shape (N, J, 2)
        Joint (x, y) in any pixel frame, in `skeleton`'s order (LSP's 14 or MPII's 16 joints;
        MPII poses are mapped to LSP's order, pelvis and thorax dropped).
    visible : ndarray, shape (N, J), bool, optional
        Whether each joint is annotated; default: every joint with finite coordinates.
    skeleton : Skeleton
        `LSP` or `MPII`.

    Returns
    -------
    PoseSet
        Missing joints are imputed from a template pose fitted (similarity transform) to the
        annotated ones, and marked not annotated.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if skeleton not in (LSP, MPII):
        raise ValueError(f"poses_from_array: skeleton must be LSP or MPII, got {skeleton.name}")
    n_joints = skeleton.n_joints
    if joints.ndim != 3 or joints.shape[1:] != (n_joints, 2):
        raise ValueError(
            f"poses_from_array: joints must have shape (N, {n_joints}, 2) for the "
            f"{skeleton.name} skeleton, got {joints.shape}"
        )
    finite = np.isfinite(joints).all(-1)
    if visible is None:
        visible = finite
    visible = np.asarray(visible)
    if visible.shape != joints.shape[:2]:
        raise ValueError(
            f"poses_from_array: visible must have shape {joints.shape[:2]}, got {visible.shape}"
        )
    annotated = visible.astype(bool) & finite
    if skeleton is MPII:
        joints, annotated = joints[:, _MPII_TO_LSP], annotated[:, _MPII_TO_LSP]
    joints = np.where(annotated[..., None], joints, 0.0)
    poses = np.stack(
        [normalise_pose(_impute(p, a)) for p, a in zip(joints, annotated, strict=True)]
    )
    return PoseSet(poses=poses, annotated=annotated)


def poses_from_joints_mat(array: np.ndarray) -> PoseSet:
    """Poses from the `joints` array of an LSP (3×14×N) or LSPET (14×3×N) `joints.mat`.

    LSP's third row is an occlusion flag (every joint annotated); LSPET's third column is 1 for
    annotated joints and 0 for missing ones (their coordinates are ≤ 0).
    """
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 3 and array.shape[:2] == (3, 14):
        joints = array[:2].transpose(2, 1, 0)
        return poses_from_array(joints, np.ones(joints.shape[:2], dtype=bool))
    if array.ndim == 3 and array.shape[:2] == (14, 3):
        joints = array[:, :2].transpose(2, 0, 1)
        return poses_from_array(joints, array[:, 2].T > 0.5)
    raise ValueError(
        "poses_from_joints_mat: expected LSP's 3×14×N or LSPET's 14×3×N joints array, "
        f"got shape {array.shape}"
    )
