"""Pictures that explain a selection (the paper's Figs. 2–3).

- :func:`neighbour_gallery`: the highest- and lowest-scoring unlabelled images, each beside its
  most probable labelled neighbours with p(j|i) (EGL++), or alone for other strategies.
- :func:`embedding_map`: a 2-D t-SNE map (openTSNE) of labelled, unlabelled and selected
  embeddings.
- :func:`explain_selection`: both, for one cycle of an experiment (the loop's ``explain``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.data import PoseData, labelled_set
from eglpp.experiment.rundir import RunPaths
from eglpp.io import save_figure
from eglpp.strategies import PoolInputs

__all__ = ["neighbour_gallery", "embedding_map", "explain_selection"]


def _show(ax, image: np.ndarray, title: str, joints: np.ndarray | None = None) -> None:
    """Draw one (3, S, S) float image in [0, 1]."""
    ax.imshow(np.clip(np.transpose(image, (1, 2, 0)), 0, 1), interpolation="nearest")
    if joints is not None:
        ax.scatter(joints[:, 0], joints[:, 1], s=4, c="yellow", linewidths=0)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def neighbour_gallery(
    unlabelled_images: np.ndarray,
    labelled_images: np.ndarray,
    scores: np.ndarray,
    path: str | Path,
    neighbours: np.ndarray | None = None,
    p: np.ndarray | None = None,
    n_rows: int = 4,
    n_neighbours: int = 4,
    title: str = "",
) -> Path:
    """Save a gallery: the ``n_rows`` highest- then lowest-scoring unlabelled images.

    Parameters
    ----------
    unlabelled_images : (U, 3, S, S) float array in [0, 1]
    labelled_images : (L, 3, S, S) float array in [0, 1]
    scores : (U,) array
    neighbours, p : (U, K) arrays, optional
        Positions in the labelled set and their p(j|i); the ``n_neighbours`` most probable are
        shown beside each image.
    """
    scores = np.asarray(scores)
    order = np.argsort(-scores, kind="stable")
    n_rows = min(n_rows, len(order) // 2 or 1)
    rows = [("high", i) for i in order[:n_rows]] + [("low", i) for i in order[::-1][:n_rows]]
    show_nb = neighbours is not None and p is not None
    if show_nb:  # one row per image: the image, then its most probable labelled neighbours
        n_cols = 1 + min(n_neighbours, neighbours.shape[1])
        grid = [[(kind, i)] for kind, i in rows]
    else:  # no neighbours: the highest scores in the top row, the lowest below
        n_cols = n_rows
        grid = [rows[:n_rows], rows[n_rows:]]
    fig = Figure(figsize=(1.5 * n_cols, 1.6 * len(grid)), dpi=110)
    axes = fig.subplots(len(grid), n_cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, cells in enumerate(grid):
        for c, (kind, i) in enumerate(cells):
            axes[r, c].axis("on")
            _show(axes[r, c], unlabelled_images[i], f"{kind} #{i}\nscore {scores[i]:.3g}")
        if show_nb:
            i = cells[0][1]
            top = np.argsort(-p[i], kind="stable")[: n_cols - 1]
            for c, t in enumerate(top, start=1):
                axes[r, c].axis("on")
                _show(
                    axes[r, c],
                    labelled_images[neighbours[i, t]],
                    f"labelled #{neighbours[i, t]}\np(j|i)={p[i, t]:.2f}",
                )
    fig.suptitle(title or "highest (top) and lowest (bottom) scores", fontsize=9)
    fig.tight_layout()
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
    xy = np.asarray(
        TSNE(n_components=2, perplexity=perplexity, random_state=seed, n_jobs=1, verbose=False).fit(
            z
        )
    )
    n_l = len(embeddings_labelled)
    lab, unl = xy[:n_l], xy[n_l:]
    mask = np.zeros(len(unl), bool)
    mask[np.asarray(selected, dtype=int)] = True
    fig = Figure(figsize=(5.2, 4.6), dpi=120)
    ax = fig.subplots()
    ax.scatter(*unl[~mask].T, s=5, c="#bbbbbb", label=f"unlabelled ({(~mask).sum()})")
    ax.scatter(*lab.T, s=7, c="#1f77b4", label=f"labelled ({n_l})")
    ax.scatter(*unl[mask].T, s=16, c="#d62728", marker="x", label=f"selected ({mask.sum()})")
    ax.legend(fontsize=7, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "t-SNE of the pooled embeddings", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def explain_selection(
    cdir: Path,
    name: str,
    inputs: PoolInputs,
    scores: np.ndarray,
    query: np.ndarray,
    details: dict[str, np.ndarray],
    data: PoseData,
    labelled_map: np.ndarray,
    cfg: ExperimentConfig,
) -> None:
    """The interpretability figures of one selection (drawn before the selection is saved).

    Parameters
    ----------
    cdir : Path
        The cycle directory: ``explain_gallery.png`` is written there, and
        ``explain_tsne.png`` when the strategy used pool embeddings.
    name : str
        The strategy's name, for the titles.
    inputs : PoolInputs
        The pool outputs the strategy scored.
    scores : array (U,)
        The strategy's score of each unlabelled image.
    query : int array (budget,)
        The selected images, as positions among the unlabelled images.
    details : dict of str to array
        The strategy's explanation arrays; ``neighbours`` (U, K) and ``p`` (U, K), when present,
        are drawn in the gallery.
    data : PoseData
        The pool, read for the images the gallery shows.
    labelled_map : int array (N,)
        The labelled-cycle array before this selection (-1 for unlabelled).
    cfg : ExperimentConfig
        Its ``seed`` seeds the t-SNE map.
    """
    unlabelled = np.flatnonzero(labelled_map < 0)
    lab_set, _ = labelled_set(data, labelled_map)
    lab_images = None
    if "neighbours" in details:
        lab_images = np.stack([lab_set[i]["image"].numpy() for i in range(len(lab_set))])
    shown = np.unique(np.concatenate([np.argsort(-scores)[:8], np.argsort(scores)[:8]]))
    unl_images = np.zeros((len(unlabelled), 3, data.input_size, data.input_size), np.float32)
    for i in shown:  # only the images the gallery shows are read
        unl_images[i] = data.pool[int(unlabelled[i])]["image"].numpy()
    neighbour_gallery(
        unl_images,
        lab_images,
        scores,
        RunPaths.explain(cdir, "gallery"),
        neighbours=details.get("neighbours"),
        p=details.get("p"),
        title=f"{name}, cycle {cdir.name[-2:]}: highest and lowest scores",
    )
    if inputs.embeddings_unlabelled is not None:
        embedding_map(
            inputs.embeddings_labelled,
            inputs.embeddings_unlabelled,
            query,
            RunPaths.explain(cdir, "tsne"),
            seed=cfg.seed,
            title=f"{name}, cycle {cdir.name[-2:]}: pooled embeddings (t-SNE)",
        )
