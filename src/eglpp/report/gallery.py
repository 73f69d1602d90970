"""The two pictures of a selection: a gallery of images with their poses, and a t-SNE map.

- :func:`neighbour_gallery`: rows of :class:`Tile` (an unlabelled image with the model's
  predicted pose, then labelled neighbours with their labelled poses), drawn at a size whose
  captions are legible at 100 % (``eglpp.pose.draw``: the colours and the legend);
- :func:`embedding_map`: a 2-D t-SNE map (openTSNE) of labelled, unlabelled and selected
  embeddings.

Both are pure drawing: what to show is decided by :mod:`eglpp.report.explain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from eglpp.io import save_figure
from eglpp.pose.draw import LABEL_COLOUR, PREDICTION_COLOUR, draw_pose, pose_grid

__all__ = ["Tile", "neighbour_gallery", "embedding_map", "weight_text", "TSNE_COLOURS"]

#: Unlabelled, labelled and selected points of the t-SNE map.
TSNE_COLOURS = {"unlabelled": "#b5b5b5", "labelled": "#1f77b4", "selected": "#d62728"}


@dataclass(frozen=True)
class Tile:
    """One picture of the gallery.

    ``image`` (3, S, S) float in [0, 1]; ``joints`` (J, 2) input px or None (no pose drawn);
    ``visible`` (J,) bool or None (all); ``labelled``: the pose is a label (drawn cyan), else
    the model's prediction (yellow).
    """

    image: np.ndarray
    caption: str
    joints: np.ndarray | None = None
    visible: np.ndarray | None = None
    labelled: bool = False


def weight_text(weight: str, w: float) -> str:
    """A neighbour's weight as the gallery and the report show it: p(j|i) to 2 decimals, a
    distance to 3 significant digits.

    >>> weight_text("p(j|i)", 0.504), weight_text("distance", 0.01234)
    ('0.50', '0.0123')
    """
    return f"{w:.2f}" if weight == "p(j|i)" else f"{w:.3g}"


def neighbour_gallery(
    rows: Sequence[Sequence[Tile]],
    limbs: Sequence[tuple[int, int]],
    path: str | Path,
    title: str,
) -> Path:
    """Save one row of tiles per shown image (rows may be shorter than the longest: the rest
    of the row stays empty), under ``title`` and the pose-colour legend."""
    n_cols = max(len(r) for r in rows)
    fig, axes = pose_grid(len(rows), n_cols, title)
    for ax in axes.ravel():
        ax.axis("off")
    for r, tiles in enumerate(rows):
        for c, t in enumerate(tiles):
            axes[r, c].axis("on")
            colour = LABEL_COLOUR if t.labelled else PREDICTION_COLOUR
            draw_pose(axes[r, c], t.image, t.joints, t.visible, limbs, t.caption, colour)
    return save_figure(fig, path)


def embedding_map(
    embeddings_labelled: np.ndarray,
    embeddings_unlabelled: np.ndarray,
    selected: np.ndarray,
    path: str | Path,
    seed: int = 0,
    title: str = "",
) -> Path:
    """Save a 2-D t-SNE map: labelled, unlabelled and selected (positions in unlabelled order)."""
    from openTSNE import TSNE  # lazy: heavy (numba), only for the t-SNE map

    z = np.concatenate([embeddings_labelled, embeddings_unlabelled]).astype(np.float64)
    perplexity = float(max(2.0, min(30.0, (len(z) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, n_jobs=1, verbose=False)
    xy = np.asarray(tsne.fit(z))
    n_l = len(embeddings_labelled)
    lab, unl = xy[:n_l], xy[n_l:]
    mask = np.zeros(len(unl), bool)
    mask[np.asarray(selected, dtype=int)] = True
    fig = Figure(figsize=(4.0, 3.7), dpi=100, layout="constrained")
    ax = fig.subplots()
    c = TSNE_COLOURS
    ax.scatter(*unl[~mask].T, s=6, c=c["unlabelled"], label=f"unlabelled ({(~mask).sum()})")
    ax.scatter(*lab.T, s=8, c=c["labelled"], label=f"labelled ({n_l})")
    ax.scatter(*unl[mask].T, s=22, c=c["selected"], marker="x", label=f"selected ({mask.sum()})")
    ax.legend(fontsize=8.5, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "t-SNE of the pooled embeddings", fontsize=9.5)
    return save_figure(fig, path)
