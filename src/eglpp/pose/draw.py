"""Poses drawn on images, one convention for every picture eglpp makes.

The contact sheet of ``eglpp select`` and the report's galleries draw the model's prediction in
:data:`PREDICTION_COLOUR` and a labelled (ground-truth) pose in :data:`LABEL_COLOUR`, with
:data:`POSE_LEGEND` saying so on the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = [
    "PREDICTION_COLOUR",
    "LABEL_COLOUR",
    "POSE_LEGEND",
    "draw_pose",
    "pose_legend",
    "pose_grid",
]

PREDICTION_COLOUR = "yellow"
LABEL_COLOUR = "cyan"
POSE_LEGEND = "yellow: the model's prediction · cyan: the labelled pose"


def draw_pose(
    ax: Axes,
    image: np.ndarray,
    joints: np.ndarray | None,
    visible: np.ndarray | None,
    limbs: Sequence[tuple[int, int]],
    caption: str,
    colour: str,
    *,
    fontsize: float = 8.0,
) -> None:
    """Show a (3, H, W) float image in [0, 1] with the limbs between visible ``joints``
    (J, 2) input px (none drawn when ``joints`` is None), captioned below the frame title."""
    ax.imshow(np.clip(np.transpose(image, (1, 2, 0)), 0, 1), interpolation="nearest")
    if joints is not None:
        joints = np.asarray(joints)
        seen = np.ones(len(joints), bool) if visible is None else np.asarray(visible, bool)
        for a, b in limbs:
            if seen[a] and seen[b]:
                ax.plot(*joints[[a, b]].T, c=colour, lw=1.2, solid_capstyle="round")
        H, W = image.shape[-2:]
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
    ax.set_title(caption, fontsize=fontsize, pad=3)
    ax.set_xticks([])
    ax.set_yticks([])


def pose_legend(fig: Figure, y: float, *, fontsize: float = 9.0) -> None:
    """A one-line legend of the two pose colours centred on ``fig``, its top at ``y``
    (figure coordinates)."""
    handles = [
        Line2D([], [], color=PREDICTION_COLOUR, lw=3, label="the model's prediction"),
        Line2D([], [], color=LABEL_COLOUR, lw=3, label="the labelled pose (ground truth)"),
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, y),
        ncol=2,
        fontsize=fontsize,
        facecolor="#3a3a3a",
        edgecolor="#3a3a3a",
        labelcolor="white",
        framealpha=1.0,
        handlelength=1.6,
        borderaxespad=0.0,
    )


def pose_grid(
    n_rows: int, n_cols: int, title: str, *, side: float = 1.7, dpi: int = 100
) -> tuple[Figure, np.ndarray]:
    """A figure of ``n_rows`` × ``n_cols`` square image axes of ``side`` inches, each with
    room for a two-line caption, under a header of ``title`` (one or more lines) and
    :func:`pose_legend`; laid out by hand, so nothing overlaps whatever the number of rows."""
    caption, gap, margin = 0.36, 0.2, 0.08  # inches: caption above each image, between columns
    n_lines = title.count("\n") + 1
    title_h, legend_h = 0.08 + 0.17 * n_lines, 0.36
    header = title_h + legend_h + 0.05
    width = n_cols * side + (n_cols - 1) * gap + 2 * margin
    height = header + n_rows * (side + caption) + margin
    fig = Figure(figsize=(width, height), dpi=dpi)
    fig.suptitle(title, fontsize=9.5, y=1 - 0.06 / height, va="top")
    pose_legend(fig, 1 - title_h / height)
    axes = fig.subplots(
        n_rows,
        n_cols,
        squeeze=False,
        gridspec_kw={
            "left": margin / width,
            "right": 1 - margin / width,
            "top": 1 - (header + caption) / height,
            "bottom": margin / height,
            "wspace": gap / side,
            "hspace": caption / side,
        },
    )
    return fig, axes
