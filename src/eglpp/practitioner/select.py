"""Score a pool of unlabelled images with any strategy, in resumable chunks, and select.

The pool is cut into chunks of ``chunk_size`` items. For each chunk the pool outputs the
strategy needs are computed (:func:`eglpp.scoring.pool_inputs.pool_inputs_and_predictions`, the same
code as the experiment loop, with the labelled set's embeddings and labels computed once) and
the strategy's ``explain`` scores them; the chunk's scores, details, embeddings and predicted
joints go to ``OUT/partial/<fingerprint>/chunk-NNNNN.npz``, written atomically
(:mod:`~eglpp.practitioner.chunks`). A rerun with the same checkpoint, labelled set, pool and
scoring settings reuses every finished chunk (the budget, device, batch size and output options
are not part of the fingerprint). Only one chunk's images are ever in memory.

A chunk's images that cannot be read (:func:`~eglpp.practitioner.chunks.unreadable`: missing,
empty, truncated, not an image) are skipped: the chunk file records which and why, they are
never scored nor selected, and a rerun checks them again (a repaired image gets its chunk scored
again). An unreadable labelled image is an error: the labelled set must be complete.

EGL++'s gradient term is exact (K vector-Jacobian products per image) or, with
``estimator="approx"``, :func:`eglpp.gradnorm.approx.expected_pair_gradnorms`: the ``n_exact``
most probable neighbours exactly, the rest by their mean cotangent plus ``n_probes`` random-sign
probes (``n_exact + 1 + n_probes`` products; ``n_exact >= K`` is the exact sum). Chunk c draws
its signs from ``stable_seed(seed, "probes", c)``, so the same seed and chunk size give the
same scores, resumed or not (with ``n_probes = 0`` the scores depend on no seed).

Per-chunk scoring equals whole-pool scoring for every strategy whose score of an image depends
on that image and the labelled set only (random, multipeak, learning-loss, EGL++: each row's
p(j|i) is calibrated on its own; with approx probes, up to the random signs). A strategy
that selects jointly (it overrides ``Strategy.select``, e.g. Core-set's k-center greedy) gets the
whole pool's usable embeddings in one :class:`~eglpp.strategies.base.PoolInputs` at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from torch import nn

from eglpp.io import StateFileError
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.preprocess import NORMALIZATIONS, Normalization, input_hw, normalization
from eglpp.pose.hourglass import StackedHourglass
from eglpp.practitioner.chunks import (
    load_chunk,
    reusable_chunk,
    save_chunk,
    skipped_entries,
    unreadable,
)
from eglpp.practitioner.coco import BOX_SCALE
from eglpp.practitioner.labelled import LabelledSet
from eglpp.practitioner.pool import Pool
from eglpp.scoring.contract import ModelContract
from eglpp.scoring.pool_inputs import LabelledCache, pool_inputs_and_predictions
from eglpp.scoring.settings import ScoringConfig
from eglpp.seeds import stable_seed
from eglpp.selection import check_budget, select_top
from eglpp.strategies import PoolInputs, Strategy, StrategySettings

__all__ = ["SelectConfig", "Scored", "score_pool", "choose", "SCORABLE_NEEDS"]

#: Pool outputs ``eglpp select`` computes chunk by chunk.
SCORABLE_NEEDS = frozenset(
    {"embeddings", "heatmaps", "predicted_loss", "pair_gradnorms", "expected_gradnorms"}
)
#: Settings of ``estimator="approx"`` (``ScoringConfig`` fields) and their flags.
_APPROX_FLAGS = {
    "n_exact": "exact-neighbours",
    "n_probes": "probes",
    "approx_check": "check-approx",
}
#: Pool outputs a jointly-selecting strategy may receive for the whole pool at the end.
_WHOLE_POOL_NEEDS = frozenset({"embeddings", "predicted_loss"})


@dataclass(frozen=True)
class SelectConfig:
    """Settings of ``eglpp select``.

    ``strategy`` is the strategy's own settings object (``EGLPlusPlus(k=30)``, as in an
    experiment's ``strategy`` section), or a strategy name for its defaults; ``scoring`` is
    the :class:`~eglpp.scoring.settings.ScoringConfig` that ``eglpp run`` carries too.
    """

    budget: int
    strategy: Strategy | str = "egl++"
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    input_size: int | tuple[int, int] = 256  # network input S or (H, W) px, as in training
    normalize: Normalization = NORMALIZATIONS["unit"]  # what the network takes (RGB in [0, 1])
    metric: str | None = None  # the labelled fit check's PCK (None: the skeleton's default)
    batch_size: int = 16
    chunk_size: int = 256  # pool images scored (and saved) per chunk
    device: str = "cpu"
    sigma: float = 1.0  # target σ of the labelled heatmaps (heatmap px), as in training
    seed: int = 0
    box_scale: float = BOX_SCALE  # crop side / longer side of a person box
    pre_annotate: str = "predicted"  # selection_coco.json: "predicted" keypoints or "empty"
    n_neighbours: int = 3  # labelled neighbours per selected image (CSV, contact sheet)
    sheet_rows: int = 16  # selected images shown on the contact sheet

    def __post_init__(self) -> None:
        if isinstance(self.strategy, str):
            object.__setattr__(self, "strategy", StrategySettings().get(self.strategy))
        object.__setattr__(self, "normalize", normalization(self.normalize))
        if not isinstance(self.strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy or a name, got {self.strategy!r}")
        checks = {  # field: (valid, flag, what is expected)
            "budget": (self.budget >= 1, "budget", ">= 1"),
            "input_size": (min(input_hw(self.input_size)) >= 16, "input-size", ">= 16 (H and W)"),
            "batch_size": (self.batch_size >= 1, "batch-size", ">= 1"),
            "chunk_size": (self.chunk_size >= 1, "chunk-size", ">= 1"),
            "sigma": (self.sigma > 0, "sigma", "> 0"),
            "box_scale": (self.box_scale > 0, "box-scale", "> 0"),
            "pre_annotate": (self.pre_annotate in ("predicted", "empty"), "pre-annotate",
                             "predicted or empty"),
            "n_neighbours": (self.n_neighbours >= 1, "neighbours", ">= 1"),
            "sheet_rows": (self.sheet_rows >= 1, "sheet-rows", ">= 1"),
        }  # fmt: skip
        bad = [
            f"--{flag} {getattr(self, k)!r} (expected {expected})"
            for k, (ok, flag, expected) in checks.items()
            if not ok
        ]
        if bad:
            raise ValueError(f"invalid select settings: {', '.join(bad)}")
        if getattr(self.strategy, "estimator", "exact") == "exact":  # approx settings: refused
            defaults, scoring = ScoringConfig(), self.scoring
            given = [f"--{flag} {getattr(scoring, k)}" for k, flag in _APPROX_FLAGS.items()
                     if getattr(scoring, k) != getattr(defaults, k)]  # fmt: skip
            if given:
                raise ValueError(f"{', '.join(given)}: applies to --estimator approx only")

    @property
    def estimator(self) -> str:
        """EGL++'s gradient estimator ("exact" for strategies without gradient norms)."""
        return getattr(self.strategy, "estimator", "exact")

    def to_dict(self) -> dict:
        """JSON-ready: the strategy by ``name`` with its ``hyperparameters``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["strategy"] = self.strategy.name
        out["hyperparameters"] = self.strategy.hyperparameters()
        out["scoring"] = asdict(self.scoring)
        out["normalize"] = self.normalize.record()
        return out


@dataclass
class Scored:
    """A scored pool: one row per usable candidate (pool items not already labelled whose
    image can be read); ``skipped`` holds the others, with the reason."""

    pool: Pool
    scores: np.ndarray  # (U,)
    embeddings: np.ndarray  # (U, C)
    joints: np.ndarray  # (U, J, 2) predicted, input px
    maxvals: np.ndarray  # (U, J)
    embeddings_labelled: np.ndarray  # (L, C)
    details: dict[str, np.ndarray] = field(default_factory=dict)  # (U, ...) each
    reused: int = 0  # chunks read back from an earlier run
    computed: int = 0  # chunks computed now
    skipped: list[dict] = field(default_factory=list)  # {"image", "path", "where", "reason"}
    labelled_set: object = None  # the labelled ImagePoseDataset scored against
    labelled_cache: object = None  # its eglpp.scoring.pool_inputs.LabelledCache


def _chunk(strategy, model, aux, pool_set, lab_set, cache, config, c: int) -> dict:
    """Score chunk ``c`` (``pool_set``: its usable items) with the generators of chunk c."""

    inputs, pred = pool_inputs_and_predictions(
        strategy.needs | {"embeddings"},
        model,
        aux,
        pool_set,
        lab_set,
        batch_size=config.batch_size,
        device=config.device,
        sigma=config.sigma,
        scoring=config.scoring,
        cache=cache,
        probe_seed=stable_seed(config.seed, "probes", c),
    )
    scores, details = strategy.explain(inputs, np.random.default_rng([config.seed, c]))
    return {
        "scores": np.asarray(scores, np.float64),
        "embeddings": inputs.embeddings_unlabelled,
        **_joints(pred, len(pool_set), lab_set.skeleton.n_joints),
        **({"predicted_loss": pred.aux} if pred.aux is not None else {}),
        **{f"detail_{k}": np.asarray(v) for k, v in details.items()},
    }


def _joints(pred, n: int, n_joints: int) -> dict[str, np.ndarray]:
    """The decoded joints and confidences, NaN for a prediction that has none (``--model``
    whose prediction is neither heatmaps nor coordinates: ``--pre-annotate empty``)."""
    if pred.joints is not None:
        return {"joints": pred.joints, "maxvals": pred.maxvals}
    return {"joints": np.full((n, n_joints, 2), np.nan), "maxvals": np.full((n, n_joints), np.nan)}


def _labelled_embeddings(cache, labelled: LabelledSet) -> np.ndarray:
    """The labelled embeddings; an unreadable labelled image is an error naming it."""
    try:
        return cache.embeddings()
    except OSError as exc:
        what = (
            f"--labelled {labelled.annotations.source}: {exc}; every labelled image must be "
            "readable (fix the file or remove its annotation)"
        )
        if isinstance(exc, FileNotFoundError):
            raise FileNotFoundError(what) from exc
        raise ValueError(what) from exc


def score_pool(
    strategy: Strategy,
    model: StackedHourglass | ModelContract,
    aux: nn.Module | None,
    labelled: LabelledSet,
    pool: Pool,
    partial: Path,
    config: SelectConfig,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Scored:
    """Score every readable candidate of ``pool`` chunk by chunk, reusing the chunk files in
    ``partial``; unreadable images go to ``Scored.skipped``."""

    unknown = strategy.needs - SCORABLE_NEEDS
    if unknown:
        raise ValueError(
            f"strategy {strategy.name!r} needs {', '.join(sorted(unknown))}, which eglpp select "
            f"does not compute (it computes {', '.join(sorted(SCORABLE_NEEDS))})"
        )
    lab_set = ImagePoseDataset(
        labelled.annotations, input_size=config.input_size, normalize=config.normalize
    )
    cache = LabelledCache(
        model, lab_set, batch_size=config.batch_size, device=config.device, sigma=config.sigma
    )
    embeddings_labelled = _labelled_embeddings(cache, labelled)
    skeleton = labelled.annotations.skeleton
    U, size = len(pool), config.chunk_size
    parts, reused = [], 0
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task(f"scoring ({strategy.name})", total=U)
        for c, lo in enumerate(range(0, U, size)):
            hi = min(lo + size, U)
            path = partial / f"chunk-{c:05d}.npz"
            part = reusable_chunk(load_chunk(path) if path.exists() else None, pool, lo, hi)
            if part is not None:
                reused += 1
            else:
                chunk = pool.subset(range(lo, hi))
                part = _chunk_part(strategy, model, aux, chunk, skeleton, lab_set, cache, config, c)
                save_chunk(path, part)
            parts.append(part)
            bar.update(task, advance=hi - lo)
    if reused:
        log(f"reused {reused} of {len(parts)} scored chunks from {partial}")
    return _gathered(parts, pool, partial, reused, embeddings_labelled, lab_set, cache)


def _chunk_part(
    strategy, model, aux, chunk: Pool, skeleton, lab_set, cache, config, c: int
) -> dict:
    """Chunk ``c``'s file content: which images are usable (with the reasons of the others)
    and the scores of the usable ones."""
    reasons = unreadable(chunk)
    usable = np.array([not r for r in reasons])
    part = {"usable": usable, "reasons": np.array(reasons).astype(str)}
    if usable.any():
        pool_set = chunk.subset(np.flatnonzero(usable)).dataset(
            skeleton, config.input_size, config.box_scale, config.normalize
        )
        part |= _chunk(strategy, model, aux, pool_set, lab_set, cache, config, c)
    return part


def _gathered(
    parts: list[dict],
    pool: Pool,
    partial: Path,
    reused: int,
    embeddings_labelled: np.ndarray,
    lab_set: ImagePoseDataset,
    cache: LabelledCache,
) -> Scored:
    """The chunks' usable rows concatenated into one :class:`Scored`; an error if no image of
    the pool can be read, or if the chunk files do not hold the same arrays."""
    computed = len(parts) - reused
    usable = np.concatenate([p["usable"] for p in parts])
    skipped = skipped_entries(pool, usable, np.concatenate([p["reasons"] for p in parts]))
    if not usable.any():
        first = skipped[0]
        raise ValueError(
            f"--pool {pool.source}: none of the {len(pool)} candidate images can be read, e.g. "
            f"{first['where']}: {first['reason']}; nothing to select"
        )
    parts = [{k: v for k, v in p.items() if k not in ("usable", "reasons")} for p in parts]
    parts = [p for p in parts if p]
    if any(set(p) != set(parts[0]) for p in parts):
        raise StateFileError(f"{partial}: chunk files of different content; delete the folder")
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return Scored(
        pool=pool.subset(np.flatnonzero(usable)),
        scores=cat.pop("scores"),
        embeddings=cat.pop("embeddings"),
        joints=cat.pop("joints"),
        maxvals=cat.pop("maxvals"),
        embeddings_labelled=embeddings_labelled,
        details={k.removeprefix("detail_"): v for k, v in cat.items()},
        reused=reused,
        computed=computed,
        skipped=skipped,
        labelled_set=lab_set,
        labelled_cache=cache,
    )


def choose(strategy: Strategy, scored: Scored, config: SelectConfig) -> np.ndarray:
    """``query`` (budget,) candidate positions, best first."""

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
