"""Score a pool of unlabelled images with any strategy, in resumable chunks, and select.

The pool is cut into chunks of ``chunk_size`` items. For each chunk the pool outputs the
strategy needs are computed (:func:`eglpp.pose.scoring.pool_inputs_and_predictions`, the same
code as the experiment loop, with the labelled set's embeddings and labels computed once) and
the strategy's ``explain`` scores them; the chunk's scores, details, embeddings and predicted
joints go to ``OUT/partial/<fingerprint>/chunk-NNNNN.npz``, written atomically. A rerun with the
same checkpoint, labelled set, pool and scoring settings reuses every finished chunk (the budget,
device, batch size and output options are not part of the fingerprint). Only one chunk's images
are ever in memory.

Per-chunk scoring equals whole-pool scoring for every strategy whose score of an image depends
on that image and the labelled set only (random, multipeak, learning-loss, EGL++: each row's
p(j|i) is calibrated on its own). A strategy that selects jointly (it overrides
``Strategy.select``, e.g. Core-set's k-center greedy) gets the whole pool's embeddings in one
:class:`~eglpp.strategies.base.PoolInputs` at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eglpp.io import StateFileError, atomic_write_bytes
from eglpp.practitioner.coco import BOX_SCALE
from eglpp.practitioner.labelled import LabelledSet
from eglpp.practitioner.pool import Pool

__all__ = ["SelectConfig", "Scored", "score_pool", "choose", "fingerprint", "SCORABLE_NEEDS"]

#: Pool outputs ``eglpp select`` computes chunk by chunk.
SCORABLE_NEEDS = frozenset({"embeddings", "heatmaps", "predicted_loss", "pair_gradnorms"})
#: Pool outputs a jointly-selecting strategy may receive for the whole pool at the end.
_WHOLE_POOL_NEEDS = frozenset({"embeddings", "predicted_loss"})


@dataclass(frozen=True)
class SelectConfig:
    """Settings of ``eglpp select``."""

    budget: int
    strategy: str = "egl++"
    hyperparameters: tuple[tuple[str, object], ...] = ()  # (name, value) pairs
    input_size: int = 256  # network input side, px (the checkpoint's training size)
    batch_size: int = 16
    chunk_size: int = 256  # pool images scored (and saved) per chunk
    device: str = "cpu"
    sigma: float = 1.0  # target σ of the labelled heatmaps (heatmap px), as in training
    gradnorm: str = "all"  # EGL++: parameters of the gradient norm
    seed: int = 0
    box_scale: float = BOX_SCALE  # crop side / longer side of a person box
    pre_annotate: str = "predicted"  # selection_coco.json: "predicted" keypoints or "empty"
    n_neighbours: int = 3  # labelled neighbours per selected image (CSV, contact sheet)
    sheet_rows: int = 16  # selected images shown on the contact sheet

    def __post_init__(self) -> None:
        checks = {
            "budget": self.budget >= 1,
            "input_size": self.input_size >= 16,
            "batch_size": self.batch_size >= 1,
            "chunk_size": self.chunk_size >= 1,
            "sigma": self.sigma > 0,
            "box_scale": self.box_scale > 0,
            "pre_annotate": self.pre_annotate in ("predicted", "empty"),
            "n_neighbours": self.n_neighbours >= 1,
            "sheet_rows": self.sheet_rows >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"--{k.replace('_', '-')} {getattr(self, k)!r}" for k in bad)
            raise ValueError(f"invalid select settings: {values}")


@dataclass
class Scored:
    """A scored pool: one row per candidate (pool items not already labelled)."""

    pool: Pool
    scores: np.ndarray  # (U,)
    embeddings: np.ndarray  # (U, C)
    joints: np.ndarray  # (U, J, 2) predicted, input px
    maxvals: np.ndarray  # (U, J)
    embeddings_labelled: np.ndarray  # (L, C)
    details: dict[str, np.ndarray] = field(default_factory=dict)  # (U, ...) each
    reused: int = 0  # chunks read back from an earlier run
    computed: int = 0  # chunks computed now


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(checkpoint: Path, labelled: LabelledSet, pool: Pool, config: SelectConfig) -> str:
    """A digest of everything the chunk scores depend on."""
    h = hashlib.sha256()
    ann = labelled.annotations
    settings = {
        k: v
        for k, v in asdict(config).items()
        if k in ("strategy", "input_size", "chunk_size", "sigma", "gradnorm", "seed", "box_scale")
    }
    settings["hyperparameters"] = sorted((k, repr(v)) for k, v in config.hyperparameters)
    h.update(_file_digest(checkpoint).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for array in (ann.joints, ann.visible, pool.boxes):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update("\n".join(map(str, ann.image_paths or [])).encode())
    h.update("\n".join(pool.keys()).encode())
    return h.hexdigest()[:16]


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None


def _chunk(strategy, model, aux, pool_set, lab_set, cache, config, rng) -> dict:
    from eglpp.pose.scoring import pool_inputs_and_predictions

    inputs, pred = pool_inputs_and_predictions(
        strategy.needs | {"embeddings"},
        model,
        aux,
        pool_set,
        lab_set,
        batch_size=config.batch_size,
        device=config.device,
        sigma=config.sigma,
        gradnorm=config.gradnorm,
        cache=cache,
    )
    scores, details = strategy.explain(inputs, rng)
    return {
        "scores": np.asarray(scores, np.float64),
        "embeddings": inputs.embeddings_unlabelled,
        "joints": pred.joints,
        "maxvals": pred.maxvals,
        **({"predicted_loss": pred.aux} if pred.aux is not None else {}),
        **{f"detail_{k}": np.asarray(v) for k, v in details.items()},
    }


def score_pool(
    strategy,
    model,
    aux,
    labelled: LabelledSet,
    pool: Pool,
    partial: Path,
    config: SelectConfig,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Scored:
    """Score every candidate of ``pool`` chunk by chunk, reusing the chunk files in ``partial``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from eglpp.pose.datasets.base import ImagePoseDataset
    from eglpp.pose.scoring import LabelledCache

    unknown = strategy.needs - SCORABLE_NEEDS
    if unknown:
        raise ValueError(
            f"strategy {strategy.name!r} needs {', '.join(sorted(unknown))}, which eglpp select "
            f"does not compute (it computes {', '.join(sorted(SCORABLE_NEEDS))})"
        )
    lab_set = ImagePoseDataset(labelled.annotations, input_size=config.input_size, train=False)
    cache = LabelledCache(
        model, lab_set, batch_size=config.batch_size, device=config.device, sigma=config.sigma
    )
    skeleton = labelled.annotations.skeleton
    U, size = len(pool), config.chunk_size
    parts, reused = [], 0
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task(f"scoring ({strategy.name})", total=U)
        for c, lo in enumerate(range(0, U, size)):
            hi = min(lo + size, U)
            path = partial / f"chunk-{c:05d}.npz"
            part = _load(path) if path.exists() else None
            if part is not None and len(part.get("scores", ())) == hi - lo:
                reused += 1
            else:
                pool_set = pool.subset(range(lo, hi)).dataset(
                    skeleton, config.input_size, config.box_scale
                )
                rng = np.random.default_rng([config.seed, c])
                part = _chunk(strategy, model, aux, pool_set, lab_set, cache, config, rng)
                _save(path, part)
            parts.append(part)
            bar.update(task, advance=hi - lo)
    if reused:
        log(f"reused {reused} of {len(parts)} scored chunks from {partial}")
    if any(set(p) != set(parts[0]) for p in parts):
        raise StateFileError(f"{partial}: chunk files of different content; delete the folder")
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return Scored(
        pool=pool,
        scores=cat.pop("scores"),
        embeddings=cat.pop("embeddings"),
        joints=cat.pop("joints"),
        maxvals=cat.pop("maxvals"),
        embeddings_labelled=cache.embeddings(),
        details={k.removeprefix("detail_"): v for k, v in cat.items()},
        reused=reused,
        computed=len(parts) - reused,
    )


def choose(strategy, scored: Scored, config: SelectConfig) -> np.ndarray:
    """``query`` (budget,) candidate positions, best first."""
    from eglpp.selection import check_budget, select_top
    from eglpp.strategies import PoolInputs, Strategy

    check_budget(config.budget, len(scored.scores))
    rng = np.random.default_rng([config.seed, 1 << 20])
    if type(strategy).select is Strategy.select:  # the ranking of per-image scores
        return select_top(scored.scores, config.budget, rng)
    if not strategy.needs <= _WHOLE_POOL_NEEDS:
        raise ValueError(
            f"strategy {strategy.name!r} selects jointly and needs "
            f"{', '.join(sorted(strategy.needs))}: eglpp select can give it only "
            f"{', '.join(sorted(_WHOLE_POOL_NEEDS))} for the whole pool"
        )
    inputs = PoolInputs(
        n_unlabelled=len(scored.scores),
        embeddings_unlabelled=scored.embeddings,
        embeddings_labelled=scored.embeddings_labelled,
        predicted_loss=scored.details.get("predicted_loss"),
    )
    return strategy.select(inputs, config.budget, rng)
