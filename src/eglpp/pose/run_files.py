"""The files of a run directory beside the checkpoints and metrics, and their readers.

``config.json`` (:func:`check_config`: a resumed experiment must match the saved settings but
for :data:`EXTENSIBLE` ones), each cycle's ``selection.npz`` (:func:`save_selection`,
:func:`load_selection`), and the interpretability figures of one selection
(:func:`explain_selection`). The directory layout is described in :mod:`eglpp.loop`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eglpp.io import StateFileError, atomic_write_bytes, atomic_write_json, read_json
from eglpp.pose.experiment import ExperimentConfig, config_from_dict, config_to_dict
from eglpp.pose.scoring import labelled_set

__all__ = ["EXTENSIBLE", "check_config", "save_selection", "load_selection", "explain_selection"]

#: Settings a resumed experiment may change: it adds runs, strategies or cycles to what is
#: there, or runs on another device, without invalidating anything already computed.
EXTENSIBLE = frozenset({"strategies", "runs", "cycles", "reference", "device", "explain_cycle"})


def check_config(cfg: ExperimentConfig, out: Path) -> None:
    """Write config.json, or check that the one there differs only in EXTENSIBLE settings.

    Parameters
    ----------
    cfg : ExperimentConfig
        The settings of the experiment being started or resumed.
    out : Path
        The run directory; its ``config.json`` is (re)written with ``cfg``.

    Raises
    ------
    StateFileError
        The saved ``config.json`` is not a readable experiment config.
    ValueError
        The saved config differs from ``cfg`` in a setting outside :data:`EXTENSIBLE`.
    """
    path = out / "config.json"
    mine = config_to_dict(cfg)
    if path.exists():
        saved = read_json(path)
        try:
            saved = config_to_dict(config_from_dict(saved, base=cfg, where=str(path)))
        except ValueError as exc:
            raise StateFileError(f"{path}: not a readable experiment config ({exc})") from exc
        diff = sorted(k for k in mine if saved.get(k) != mine[k] and k not in EXTENSIBLE)
        if diff:
            raise ValueError(
                f"{out} holds a run of another config (differs in: {', '.join(diff)}); "
                "use another --out or the same settings"
            )
    atomic_write_json(path, mine)


def save_selection(path: Path, scores, query, unlabelled, details) -> None:
    """Write one cycle's selection as an ``.npz`` file, atomically.

    Parameters
    ----------
    path : Path
        The cycle's ``selection.npz``.
    scores : array (U,)
        The strategy's score of each unlabelled image.
    query : int array (budget,)
        The selected images, as pool indices (stored as ``query_indices``).
    unlabelled : int array (U,)
        Pool indices of the unlabelled images, in the order of ``scores``.
    details : dict of str to array
        The strategy's explanation arrays, each stored as ``detail_<key>``.
    """
    import io

    buf = io.BytesIO()
    arrays = {f"detail_{k}": np.asarray(v) for k, v in details.items()}
    np.savez(buf, scores=scores, query_indices=query, unlabelled=unlabelled, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_selection(path: Path) -> dict[str, np.ndarray]:
    """Read a selection written by :func:`save_selection`.

    Parameters
    ----------
    path : Path
        The cycle's ``selection.npz``.

    Returns
    -------
    dict of str to ndarray
        ``scores``, ``query_indices``, ``unlabelled`` and the ``detail_<key>`` arrays.

    Raises
    ------
    StateFileError
        The file is missing or not a readable ``.npz`` archive.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise StateFileError(f"{path}: not a readable selection file ({exc})") from exc


def explain_selection(cdir, name, inputs, scores, query, details, data, labelled_map, cfg) -> None:
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
    from eglpp.report.explain import embedding_map, neighbour_gallery

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
        cdir / "explain_gallery.png",
        neighbours=details.get("neighbours"),
        p=details.get("p"),
        title=f"{name}, cycle {cdir.name[-2:]}: highest and lowest scores",
    )
    if inputs.embeddings_unlabelled is not None:
        embedding_map(
            inputs.embeddings_labelled,
            inputs.embeddings_unlabelled,
            query,
            cdir / "explain_tsne.png",
            seed=cfg.seed,
            title=f"{name}, cycle {cdir.name[-2:]}: pooled embeddings (t-SNE)",
        )
