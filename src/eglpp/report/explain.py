"""What explains one selection of an experiment (the paper's Figs. 2–3), for every strategy.

:func:`explain_selection` is the loop's ``explain``: for one cycle it writes

- ``explain_gallery.png``: the images with the highest and the lowest scores (a strategy whose
  scores are draws, random sampling, shows images it selected instead), each with the pose
  the scoring model predicts, beside its labelled neighbours with their labelled poses;
  EGL++'s neighbours are its most probable ones with p(j|i) (Eq. 13), the other strategies'
  the nearest labelled images in embedding space;
- ``explain_gallery.json``: the same rows as data (:func:`gallery_record`), which the report's
  table shows;
- ``explain_tsne.png``: a t-SNE map of the labelled, unlabelled and selected embeddings.

Every image is named by one index system: ``pool #i`` (its index in the experiment's pool) or,
for a separate base set, ``base #k``. Predictions and embeddings come from the checkpoint that
scored the cycle (:meth:`eglpp.experiment.rundir.RunPaths.scoring_model`), so every strategy
gets its poses and its map, whatever it asked the loop for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset, Subset

from eglpp.affinity import nearest_labelled
from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.data import PoseData, experiment_sets, labelled_set
from eglpp.experiment.rundir import RunPaths
from eglpp.io import atomic_write_json
from eglpp.pose.checkpoint import load_model
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.inference import predict
from eglpp.report.gallery import Tile, embedding_map, neighbour_gallery, weight_text
from eglpp.strategies import PoolInputs

__all__ = [
    "explain_selection",
    "gallery_rows",
    "gallery_record",
    "labelled_names",
]

N_ROWS = 3  # highest and lowest scores each (or 2 × N_ROWS selected images)
N_NEIGHBOURS = 3  # labelled neighbours beside each image


def gallery_rows(
    scores: np.ndarray, query: np.ndarray, informative: bool, n: int = N_ROWS
) -> list[tuple[str, int]]:
    """(what the row shows, position in unlabelled order) of the gallery's rows.

    >>> gallery_rows(np.array([0.1, 0.9, 0.5, 0.3]), np.array([1, 2]), True, n=1)
    [('highest score', 1), ('lowest score', 0)]
    >>> gallery_rows(np.array([0.1, 0.9, 0.5, 0.3]), np.array([3, 0]), False, n=1)
    [('selected', 3), ('selected', 0)]
    """
    if not informative:
        return [("selected", int(i)) for i in np.asarray(query)[: 2 * n]]
    order = np.argsort(-np.asarray(scores), kind="stable")
    n = min(n, max(len(order) // 2, 1))
    high = [("highest score", int(i)) for i in order[:n]]
    return high + [("lowest score", int(i)) for i in order[::-1][:n]]


def labelled_names(n_base: int, pool_indices: np.ndarray) -> list[str]:
    """The name of each labelled image, in labelled-set order (the base set, then the pool's).

    >>> labelled_names(1, np.array([4, 9]))
    ['base #0', 'pool #4', 'pool #9']
    """
    return [f"base #{k}" for k in range(n_base)] + [f"pool #{int(i)}" for i in pool_indices]


def _neighbours(positions, details, emb_u, emb_l, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(labelled positions (R, n), weights (R, n), the weight's name) for gallery rows."""
    if "neighbours" in details and "p" in details:  # EGL++: its most probable neighbours
        nb, p = details["neighbours"][positions], details["p"][positions]
        top = np.argsort(-p, axis=1, kind="stable")[:, :n]
        return np.take_along_axis(nb, top, 1), np.take_along_axis(p, top, 1), "p(j|i)"
    if emb_u is None or emb_l is None:
        return np.zeros((len(positions), 0), np.int64), np.zeros((len(positions), 0)), ""
    sq, nb = nearest_labelled(emb_u[positions], emb_l, min(n, len(emb_l)))
    return nb, np.sqrt(sq), "distance"


def gallery_record(rows, unlabelled, scores, query, nb, weights, weight, names) -> dict:
    """``explain_gallery.json``: for each gallery row what it shows, the pool index, the
    score, whether it was selected, and its neighbours (name, weight)."""
    chosen = set(np.asarray(query).tolist())
    return {
        "weight": weight,
        "rows": [
            {
                "shown_as": kind,
                "image": f"pool #{int(unlabelled[i])}",
                "score": float(scores[i]),
                "selected": i in chosen,
                "neighbours": [
                    [names[j], float(w)] for j, w in zip(nb[r], weights[r], strict=True)
                ],
            }
            for r, (kind, i) in enumerate(rows)
        ],
    }


def _scoring_model(cdir: Path, cfg: ExperimentConfig) -> StackedHourglass | None:
    path = RunPaths.scoring_model(cdir)
    return load_model(path).to(cfg.device) if path.is_file() else None


def _embeddings(inputs: PoolInputs, model, pool_set: Dataset, lab_set: Dataset, cfg):
    """(unlabelled, labelled) embeddings: the strategy's, else the scoring model's."""
    if inputs.embeddings_unlabelled is not None and inputs.embeddings_labelled is not None:
        return inputs.embeddings_unlabelled, inputs.embeddings_labelled
    if model is None:
        return None, None
    kw = {"return_embeddings": True, "batch_size": cfg.batch_size, "device": cfg.device}
    return predict(model, pool_set, **kw).embeddings, predict(model, lab_set, **kw).embeddings


def _tiles(record, rows, pool_set, lab_set, nb, predicted) -> list[list[Tile]]:
    out = []
    for r, ((_, i), row) in enumerate(zip(rows, record["rows"], strict=True)):
        mark = " · selected" if row["selected"] else ""
        head = f"{row['image']}{mark}\n{row['shown_as']} {row['score']:.3g}"
        if row["shown_as"] == "selected":
            head = f"{row['image']} (selected)\nscore {row['score']:.3g}"
        joints = None if predicted is None else predicted[r]
        tiles = [Tile(pool_set[i]["image"].numpy(), head, joints)]
        for j, (name, w) in zip(nb[r], row["neighbours"], strict=True):
            item = lab_set[int(j)]
            caption = f"{name}\n{record['weight']} {weight_text(record['weight'], w)}"
            joints_j, visible_j = item["joints"].numpy(), item["visible"].numpy()
            tiles.append(Tile(item["image"].numpy(), caption, joints_j, visible_j, labelled=True))
        out.append(tiles)
    return out


def _title(name: str, cycle: str, informative: bool, weight: str, n_query: int, n: int) -> str:
    shown = (
        f"the {N_ROWS} highest and {N_ROWS} lowest scores"
        if informative
        else f"{n} of its {n_query} selected images (its scores are random draws)"
    )
    beside = {"p(j|i)": "most probable labelled neighbours (p(j|i), Eq. 13)",
              "distance": "nearest labelled images (embedding distance)"}.get(weight)  # fmt: skip
    return f"{name}, cycle {cycle}: {shown}" + (f",\nbeside their {beside}" if beside else "")


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
    """The pictures of one selection (drawn before the selection is saved); see the module
    docstring. ``scores`` (U,) and ``query`` (positions, best first) are in unlabelled order;
    ``details`` may hold EGL++'s ``neighbours`` and ``p`` (U, K); ``labelled_map`` is the
    labelled-cycle array before this selection."""
    informative = cfg.strategy.get(name).informative_scores
    pool_set, lab_set = experiment_sets(data, labelled_map)
    model = _scoring_model(cdir, cfg)
    emb_u, emb_l = _embeddings(inputs, model, pool_set, lab_set, cfg)
    rows = gallery_rows(scores, query, informative)
    positions = np.array([i for _, i in rows], np.int64)
    nb, weights, weight = _neighbours(positions, details, emb_u, emb_l, N_NEIGHBOURS)
    names = labelled_names(data.n_base, labelled_set(data, labelled_map)[1])
    unlabelled = np.flatnonzero(labelled_map < 0)
    record = gallery_record(rows, unlabelled, scores, query, nb, weights, weight, names)
    atomic_write_json(RunPaths.explain_rows(cdir), record)
    predicted = None
    if model is not None:
        shown = Subset(pool_set, positions.tolist())
        predicted = predict(model, shown, batch_size=cfg.batch_size, device=cfg.device).joints
    title = _title(name, cdir.name[-2:], informative, weight, len(query), len(rows))
    tiles = _tiles(record, rows, pool_set, lab_set, nb, predicted)
    neighbour_gallery(tiles, data.skeleton.limbs, RunPaths.explain(cdir, "gallery"), title)
    if emb_u is not None:
        embedding_map(emb_l, emb_u, query, RunPaths.explain(cdir, "tsne"), seed=cfg.seed,
                      title=f"{name}, cycle {cdir.name[-2:]}: embeddings (t-SNE)")  # fmt: skip
