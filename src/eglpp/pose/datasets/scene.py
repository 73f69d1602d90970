"""Scenes of rendered people: appearance domains and the per-item random scene description.

A scene is drawn from a numpy Generator that belongs to one item, so it depends only on that
item's seed. All geometry is in *normalised image units*: x = 0 is the left edge of the image
and x = 1 its right edge, so a scene renders at any resolution (pixel = u · S − 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eglpp.pose.datasets.kinematics import body_axes, facing_cosine, normalise_pose

__all__ = ["DomainStyle", "domain_style", "sample_scene", "JOINT_PARTS"]

SIDES = ((0, 1, 2, 8, 7, 6), (5, 4, 3, 9, 10, 11))  # ankle, knee, hip, shoulder, elbow, wrist
# Part ids of the person's layers: 0 right_shin, 1 right_thigh, 2 left_thigh, 3 left_shin,
# 4 right_forearm, 5 right_upper_arm, 6 left_upper_arm, 7 left_forearm, 8 waist, 9 chest,
# 10 pelvis, 11 shoulders, 12 logo, 13 neck, 14 hair, 15 face, 16 right_foot, 17 left_foot,
# 18 right_hand, 19 left_hand.
# Parts that draw each LSP joint: a joint whose topmost covering layer is not one of them is
# occluded (by an object, a distractor or the person's own body).
JOINT_PARTS = (
    (0, 16), (0, 1), (1, 8, 10), (2, 8, 10), (2, 3), (3, 17), (4, 18), (4, 5),
    (5, 9, 11), (6, 9, 11), (6, 7), (7, 19), (9, 11, 12, 13, 14, 15), (14, 15),
)  # fmt: skip


@dataclass(frozen=True)
class DomainStyle:
    """Appearance statistics of one domain (colours as HSV ranges, fractions of the hue circle)."""

    name: str
    garment_hue: tuple[float, float]  # clothes
    garment_sat: tuple[float, float]
    garment_val: tuple[float, float]
    background_hue: tuple[float, float]
    background_sat: tuple[float, float]
    background_val: tuple[float, float]
    background_variation: float  # amplitude of the smooth background noise
    clutter: int  # background shapes and stripes per image (each drawn with probability 0.8)
    n_distractors: int  # two-segment limbs of other people behind the person
    look_alike_prob: float  # a distractor wears the person's colours
    occlusion_prob: float  # an object in front of the person (a second with a third of it)
    lr_contrast: float  # max relative brightness difference of the left and right limbs
    distinct_sides: bool  # left and right limbs in different hues (an easy domain)
    texture: float  # max stripe amplitude on clothes and objects
    blur: float  # Gaussian blur σ in pixels of a 64-px image (scaled with the size)
    noise: float  # pixel noise σ
    scale: tuple[float, float]  # longer side of the person's joint box, fraction of the image
    rotation_jitter_deg: float  # extra in-plane rotation of every pose
    prior_rotation_std_deg: float  # the kinematic prior's in-plane rotation
    prior_large_rotation_prob: float


def domain_style(name: str) -> DomainStyle:
    """The appearance of a named domain: ``"clean"``, ``"lsp"`` or ``"lspet"``.

    ``lsp`` imitates sports photos: saturated kit on green and brown grounds, moderate clutter.
    ``lspet`` is the shifted domain: muted clothes on grey-blue urban clutter with stripes, more
    look-alike distractors and occluders, blur and noise, and more extreme rotations. ``clean``
    is a sanity domain: plain background, left and right limbs in different hues.
    """
    common = dict(garment_sat=(0.45, 0.95), garment_val=(0.45, 0.95), scale=(0.62, 0.88))
    if name == "clean":
        return DomainStyle(
            name, (0.0, 1.0), **{**common, "scale": (0.7, 0.85)}, background_hue=(0.0, 1.0),
            background_sat=(0.0, 0.15), background_val=(0.45, 0.6), background_variation=0.03,
            clutter=0, n_distractors=0, look_alike_prob=0.0, occlusion_prob=0.0, lr_contrast=0.0,
            distinct_sides=True, texture=0.0, blur=0.0, noise=0.0, rotation_jitter_deg=0.0,
            prior_rotation_std_deg=8.0, prior_large_rotation_prob=0.0,
        )  # fmt: skip
    if name == "lsp":
        return DomainStyle(
            name, (0.0, 1.0), **common, background_hue=(0.08, 0.35), background_sat=(0.25, 0.7),
            background_val=(0.3, 0.75), background_variation=0.12, clutter=6, n_distractors=1,
            look_alike_prob=0.3, occlusion_prob=0.2, lr_contrast=0.12, distinct_sides=False,
            texture=0.25, blur=0.4, noise=0.015, rotation_jitter_deg=5.0,
            prior_rotation_std_deg=12.0, prior_large_rotation_prob=0.05,
        )  # fmt: skip
    if name == "lspet":
        return DomainStyle(
            name, (0.45, 0.8), garment_sat=(0.1, 0.6), garment_val=(0.25, 0.8), scale=(0.6, 0.9),
            background_hue=(0.5, 0.7), background_sat=(0.0, 0.35), background_val=(0.25, 0.8),
            background_variation=0.18, clutter=10, n_distractors=3, look_alike_prob=0.6,
            occlusion_prob=0.35, lr_contrast=0.04, distinct_sides=False, texture=0.3, blur=0.6,
            noise=0.03, rotation_jitter_deg=8.0, prior_rotation_std_deg=25.0,
            prior_large_rotation_prob=0.2,
        )  # fmt: skip
    raise ValueError(f"unknown rendering domain '{name}'; known domains: clean, lsp, lspet")


def _hsv(rng: np.random.Generator, hue, sat, val) -> np.ndarray:
    """One RGB colour with H, S, V drawn uniformly from the given ranges (hue wraps)."""
    h = rng.uniform(*hue) % 1.0 * 6.0
    s, v = rng.uniform(*sat), rng.uniform(*val)
    k = (np.array([5.0, 3.0, 1.0]) + h) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _layer(a, b, radius, colour, *, box=False, opacity=1.0, texture=(0, 0, 0, 0), shade=0.35):
    """One layer as a tuple of the `Layers` fields (start, end, radius, box, colour, ...)."""
    a, b, colour = np.asarray(a, float), np.asarray(b, float), np.asarray(colour, float)
    return (a, b, float(radius), bool(box), colour, float(opacity), np.asarray(texture, float),
            float(shade))  # fmt: skip


def _texture(rng: np.random.Generator, amplitude: float) -> tuple[float, float, float, float]:
    """Stripes: amplitude, frequency in cycles per image width, phase, along (1) or across (0)."""
    return (
        rng.uniform(0, amplitude),
        rng.uniform(4, 30),
        rng.uniform(0, 2 * np.pi),
        rng.random() < 0.5,
    )


def _grain(rng: np.random.Generator, g: int) -> np.ndarray:
    """Background noise on a g×g grid (3, g, g): mostly brightness, a little colour."""
    return 0.8 * rng.normal(size=(1, g, g)) + 0.35 * rng.normal(size=(3, g, g))


def _person(rng, joints, style, colours) -> list[tuple]:
    """The person's layers in drawing order (far side first), each tagged with its part id."""
    up, right, torso = body_axes(joints)
    extent = float(np.ptp(joints, axis=0).max())
    ref = float(np.clip(torso, 0.22 * extent, 0.45 * extent))  # body size for thicknesses
    cos_yaw = facing_cosine(joints)
    sin_yaw = rng.choice((-1.0, 1.0)) * np.sqrt(max(0.0, 1.0 - cos_yaw**2))
    skin, shirt, pants, shoes, hair, logo, sleeve, leg_lower = colours
    tex = _texture(rng, style.texture)
    parts: dict[int, list[tuple]] = {}

    def add(part, a, b, radius, colour, **kwargs):
        parts.setdefault(part, []).append(_layer(a, b, radius, colour, **kwargs))

    for side, (ank, kne, hip, sho, elb, wri) in enumerate(SIDES):
        tint = 1.0 + (style.lr_contrast * rng.uniform(-1, 1) if side == 0 else 0.0)
        turn = [1, 2, 0] if style.distinct_sides and side == 0 else [0, 1, 2]  # hue shift
        thigh, shin, upper, fore = (1, 0, 5, 4) if side == 0 else (2, 3, 6, 7)
        add(thigh, joints[hip], joints[kne], 0.17 * ref, pants[turn] * tint, texture=tex)
        add(shin, joints[kne], joints[ank], 0.13 * ref, leg_lower[turn] * tint, texture=tex)
        foot = sin_yaw * right - 0.5 * up  # toes point the way the person faces
        foot = 0.28 * ref * (0.4 + 0.6 * abs(sin_yaw)) * foot / max(np.hypot(*foot), 1e-9)
        add(16 + side, joints[ank], joints[ank] + foot, 0.08 * ref, shoes)
        add(upper, joints[sho], joints[elb], 0.12 * ref, shirt[turn] * tint, texture=tex)
        add(fore, joints[elb], joints[wri], 0.1 * ref, sleeve[turn] * tint, texture=tex)
        forearm = joints[wri] - joints[elb]
        hand = joints[wri] + 0.05 * ref * forearm / max(np.hypot(*forearm), 1e-9)
        add(18 + side, hand, hand, 0.11 * ref, skin)
    # Torso: the quadrilateral shoulders–hips filled by four bars (waist: lower two, chest: upper).
    bar = max(0.16 * torso, 0.12 * ref)
    for t in (0.875, 0.625, 0.375, 0.125):
        a, b = (1 - t) * joints[8] + t * joints[2], (1 - t) * joints[9] + t * joints[3]
        add(8 if t > 0.5 else 9, a, b, bar, shirt, texture=tex)
    add(10, joints[2], joints[3], 0.17 * ref, pants)
    add(11, joints[8], joints[9], 0.12 * ref, shirt)
    chest = 0.3 * joints[2:4].mean(0) + 0.7 * joints[8:10].mean(0)
    front = float(cos_yaw > 0.3 and rng.random() < 0.6)
    add(12, chest - 0.06 * ref * up, chest + 0.06 * ref * up, 0.07 * ref, logo, box=True,
        opacity=front, shade=0.0)  # fmt: skip
    head_axis = joints[13] - joints[12]
    head_len = max(np.hypot(*head_axis), 1e-9)
    head_up = head_axis / head_len
    r_head = float(np.clip(0.36 * head_len, 0.15 * ref, 0.3 * ref))
    centre = joints[13] - 0.7 * r_head * head_up  # the head top lies inside the hair
    add(13, joints[12], centre, 0.09 * ref, skin)
    add(14, centre, centre, r_head, hair, shade=0.2)
    face = centre + r_head * (-0.2 * head_up + 0.25 * sin_yaw * np.array([-head_up[1], head_up[0]]))
    add(15, face, face, 0.78 * r_head, skin, opacity=float(cos_yaw > -0.25), shade=0.2)
    right_side, left_side = (0, 1, 16, 4, 5, 18), (2, 3, 17, 6, 7, 19)
    near, far = (right_side, left_side) if sin_yaw > 0 else (left_side, right_side)
    core = (10, 8, 9, 11, 12, 13, 14, 15)
    if rng.random() < 0.25:  # the far arm crosses in front of the body
        order = far[:3] + core + far[3:] + near
    else:
        order = far + core + near
    return [layer + (p,) for p in order for layer in parts[p]]


def _garment(rng: np.random.Generator, style: DomainStyle) -> np.ndarray:
    """One clothes colour of the domain."""
    return _hsv(rng, style.garment_hue, style.garment_sat, style.garment_val)


def _background(rng: np.random.Generator, style: DomainStyle) -> np.ndarray:
    """One background colour of the domain (ground, clutter, occluders)."""
    return _hsv(rng, style.background_hue, style.background_sat, style.background_val)


def _place(
    rng: np.random.Generator, pose: np.ndarray, style: DomainStyle
) -> tuple[np.ndarray, float]:
    """The person's joints (14, 2) in normalised image units, and its scale (box side)."""
    angle = np.radians(rng.normal(0.0, style.rotation_jitter_deg))
    c, s = np.cos(angle), np.sin(angle)
    pose = normalise_pose(pose @ np.array([[c, s], [-s, c]]))
    scale = rng.uniform(*style.scale)
    joints = 0.5 + rng.uniform(-1, 1, size=2) * max(0.0, 1.0 - scale) * 0.45 + scale * pose
    return joints, scale


def _colours(rng: np.random.Generator, style: DomainStyle) -> tuple[np.ndarray, ...]:
    """skin, shirt, pants, shoes, hair, logo, sleeve, leg_lower: the person's colours."""
    skin = _hsv(rng, (0.02, 0.09), (0.25, 0.6), (0.3, 0.95))
    shirt, pants, logo = _garment(rng, style), _garment(rng, style), _garment(rng, style)
    shoes = _hsv(rng, (0.0, 1.0), (0.0, 0.6), (0.05, 0.9))
    hair = _hsv(rng, (0.02, 0.12), (0.2, 0.8), (0.05, 0.5 if rng.random() < 0.8 else 0.9))
    sleeve = shirt if rng.random() < 0.5 else skin
    leg_lower = pants if rng.random() < 0.6 else skin
    return skin, shirt, pants, shoes, hair, logo, sleeve, leg_lower


def _clutter(rng: np.random.Generator, style: DomainStyle) -> list[tuple]:
    """Background shapes and stripes (part −1), each shown with probability 0.8."""
    layers = []
    for _ in range(style.clutter):
        start = rng.uniform(-0.1, 1.1, size=2)
        stripe = rng.random() < 0.25
        length = rng.uniform(1.0, 1.6) if stripe else rng.uniform(0.0, 0.5)
        direction = rng.normal(size=2)
        end = start + length * direction / np.hypot(*direction)
        radius = rng.uniform(0.01, 0.04) if stripe else rng.uniform(0.02, 0.15)
        box, shown = stripe or rng.random() < 0.5, float(rng.random() < 0.8)
        texture = _texture(rng, style.texture)
        colour = _background(rng, style)
        layer = _layer(start, end, radius, colour, box=box, opacity=shown, texture=texture)
        layers.append(layer + (-1,))
    return layers


def _distractors(rng: np.random.Generator, style: DomainStyle, extent: float, colours) -> list:
    """Two-segment limbs of other people (part −1), some in the person's own colours."""
    skin, shirt, sleeve = colours[0], colours[1], colours[6]
    layers = []
    for _ in range(style.n_distractors):
        ref = 0.3 * extent * rng.uniform(0.8, 1.2)
        look_alike = rng.random() < style.look_alike_prob
        first = shirt if look_alike else _garment(rng, style)
        second = sleeve if look_alike else rng.choice([first, skin])
        a = rng.uniform(0.0, 1.0, size=2)
        angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, rng.uniform(-2.0, 2.0)])
        b = a + 0.62 * ref * np.array([np.cos(angles[0]), np.sin(angles[0])])
        c = b + 0.55 * ref * np.array([np.cos(angles[1]), np.sin(angles[1])])
        layers.append(_layer(a, b, 0.12 * ref, first) + (-1,))
        layers.append(_layer(b, c, 0.1 * ref, second) + (-1,))
    return layers


def _occluders(rng: np.random.Generator, style: DomainStyle, joints, extent: float) -> list:
    """Two objects in front of the person (part −1), present with the domain's probability."""
    layers = []
    for k in range(2):
        present = rng.random() < style.occlusion_prob * (1.0 if k == 0 else 1.0 / 3.0)
        ref = 0.3 * extent
        centre = joints[rng.integers(14)] + rng.normal(0, 0.2 * ref, size=2)
        direction = rng.normal(size=2)
        half = rng.uniform(0.15, 0.5) * ref * direction / np.hypot(*direction)
        radius, box = rng.uniform(0.1, 0.35) * ref, rng.random() < 0.6
        texture = _texture(rng, style.texture)
        layer = _layer(centre - half, centre + half, radius, _background(rng, style), box=box,
                       opacity=float(present), texture=texture, shade=0.15)  # fmt: skip
        layers.append(layer + (-1,))
    return layers


def sample_scene(rng: np.random.Generator, pose: np.ndarray, style: DomainStyle) -> dict:
    """Draw one scene around a person-frame pose (14, 2).

    Returns
    -------
    dict
        ``joints`` (14, 2) normalised image units; ``layers``: the fields of
        :class:`~eglpp.pose.datasets.render.Layers` for one scene (L = clutter + 2·n_distractors
        + 22 + 2 layers); ``part`` (L,) part id of each layer (−1 for non-person layers);
        ``coarse`` (3, 4, 4) and ``fine`` (3, 12, 12) background grids; ``blur`` (σ in image
        widths), ``noise`` (σ), ``gain`` and ``bias``.
    """
    joints, extent = _place(rng, pose, style)
    colours = _colours(rng, style)
    person = _person(rng, joints, style, colours)
    layers = _clutter(rng, style) + _distractors(rng, style, extent, colours) + person
    layers += _occluders(rng, style, joints, extent)
    fields = ("start", "end", "radius", "box", "colour", "opacity", "texture", "shading", "part")
    stacked = {name: np.stack([layer[k] for layer in layers]) for k, name in enumerate(fields)}
    base = _background(rng, style)
    return {
        "joints": joints,
        "layers": {k: v for k, v in stacked.items() if k != "part"},
        "part": stacked["part"].astype(np.int64),
        "coarse": base[:, None, None] + style.background_variation * _grain(rng, 4),
        "fine": 0.4 * style.background_variation * _grain(rng, 12),
        "blur": style.blur / 64 * rng.uniform(0.5, 1.5),
        "noise": style.noise * rng.uniform(0.5, 1.5),
        "gain": 1.0 + rng.uniform(-0.12, 0.12),
        "bias": rng.uniform(-0.05, 0.05),
    }
