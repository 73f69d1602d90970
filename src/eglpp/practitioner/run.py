"""``eglpp select`` as a library: score a pool with a checkpoint and write the selection.

:func:`run_select` reads the labelled set, the pool and the checkpoint, scores the candidates
chunk by chunk (:func:`~eglpp.practitioner.select.score_pool`, resumable), checks the approximate
estimator on a sample when asked (:mod:`eglpp.scoring.approx_check`), selects, and writes the
tables, ``selection_coco.json``, the contact sheet and ``summary.json`` (:mod:`.outputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import nn

from eglpp.devices import check_device
from eglpp.io import atomic_write_json
from eglpp.outdir import refuse_other_kind
from eglpp.pose.checkpoint import load_checkpoint, load_model
from eglpp.pose.datasets.preprocess import fed_text, input_hw
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.metrics import mean_pose, pck
from eglpp.pose.normalisers import METRICS, default_metric, metric_normaliser
from eglpp.pose.skeleton import Skeleton
from eglpp.practitioner import outputs
from eglpp.practitioner.fingerprint import fingerprint
from eglpp.practitioner.foreign import ForeignModel
from eglpp.practitioner.labelled import LabelledSet, check_labelled_joints, load_labelled
from eglpp.practitioner.pool import Pool, read_pool
from eglpp.practitioner.select import Scored, SelectConfig, choose, score_pool
from eglpp.practitioner.settings import check_estimator, check_same_selection, estimator_of
from eglpp.scoring.approx_check import approx_agreement
from eglpp.scoring.contract import ModelContract
from eglpp.scoring.pool_inputs import LabelledCache, pool_inputs
from eglpp.selection import check_budget
from eglpp.stats import RANK_GATE as GATE
from eglpp.strategies import Strategy

__all__ = ["run_select", "check_approx", "labelled_fit"]

Log = Callable[[str], None]


def _load(checkpoint: Path, strategy, labelled_skeleton):
    """The model (and the strategy's auxiliary module) from ``checkpoint``, checked."""
    if not checkpoint.is_file():
        raise FileNotFoundError(f"--checkpoint {checkpoint}: no such file")
    model = load_model(checkpoint)
    if model.config.n_joints != labelled_skeleton.n_joints:
        raise ValueError(
            f"--checkpoint {checkpoint}: another architecture: the model predicts "
            f"{model.config.n_joints} joints but the labelled set is in the "
            f"{labelled_skeleton.name} skeleton ({labelled_skeleton.n_joints} joints)"
        )
    aux = strategy.auxiliary(model.feature_channels())
    if aux is not None:
        try:
            load_checkpoint(checkpoint, model, aux=aux)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(
                f"--checkpoint {checkpoint}: strategy {strategy.name!r} needs the weights of "
                f"its auxiliary head trained with the model, which this checkpoint lacks or "
                f"holds with other settings: train one with eglpp train --learning-loss (eglpp "
                f"run saves them in run-XX/{strategy.name}/cycle-YY/model.pt), or select with "
                f"another strategy (egl++, coreset, random): {str(exc)[:300]}"
            ) from exc
    return model, aux


def _load_foreign(foreign: ForeignModel, strategy, skeleton: Skeleton, config: SelectConfig):
    """The user's network (``--model``) checked against the strategy and the labelled set."""
    if strategy.needs & {"predicted_loss"}:
        raise ValueError(
            f"--strategy {strategy.name}: needs the loss-prediction head trained with the "
            "model (an eglpp checkpoint); with --model use random, coreset, multipeak or egl++"
        )
    if foreign.n_joints is not None and foreign.n_joints != skeleton.n_joints:
        raise ValueError(
            f"--model {foreign.spec}: predicts {foreign.n_joints} joints ({foreign.kind}) but the "
            f"labelled set is in the {skeleton.name} skeleton ({skeleton.n_joints} joints)"
        )
    if foreign.kind == "other" and config.pre_annotate == "predicted":
        raise ValueError(
            "--pre-annotate predicted: the --model prediction is neither heatmaps (B, J, h, w) "
            "nor coordinates (B, J, 2), so no keypoints can be pre-annotated; use "
            "--pre-annotate empty"
        )
    return foreign.contract, None


def _candidates(pool, lab: LabelledSet, budget: int) -> tuple[Pool, int]:
    """The pool's images not already in the labelled set, and the pool's size."""
    everything = read_pool(pool)
    labelled_paths = {p.resolve() for p in lab.annotations.image_paths}
    keep = [i for i, p in enumerate(everything.paths) if p.resolve() not in labelled_paths]
    if not keep:
        raise ValueError(f"--pool {pool}: every image is already in the labelled set")
    candidates = everything.subset(keep)
    check_budget(budget, len(candidates))
    return candidates, len(everything)


def _score(strategy, model, aux, lab, candidates, out, config, fp, progress, log) -> Scored:
    partial = out / "partial" / fp
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "select_config.json", {**config.to_dict(), "fingerprint": fp})
    try:
        return score_pool(
            strategy, model, aux, lab, candidates, partial, config, progress=progress, log=log
        )
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(str(exc)) from exc


def labelled_fit(
    cache: LabelledCache, skeleton: Skeleton, alpha: float = 0.2, metric: str | None = None
) -> dict | None:
    """PCK@α on the labelled set of the checkpoint (``"model"``) and of the mean-pose baseline
    (``"mean_pose"``: the labelled set's average pose for every image), fractions; torso
    normaliser where ``skeleton`` has one, else the box around the annotated joints (or
    ``metric``: ``select --pck-normaliser``); None where no labelled person has the
    normaliser's joints annotated."""
    joints, visible = (t.numpy() for t in cache.truth())
    metric = metric or default_metric(skeleton)
    norm, _ = metric_normaliser(metric, skeleton, joints, visible)
    if not np.isfinite(norm).any() or cache.predictions().joints is None:
        return None
    baseline = np.broadcast_to(mean_pose(joints, visible), joints.shape)
    predicted = cache.predictions().joints
    return {
        "metric": f"{METRICS[metric][2]}@{alpha:g}",
        "model": float(pck(predicted, joints, visible, norm, alpha).mean),
        "mean_pose": float(pck(baseline, joints, visible, norm, alpha).mean),
    }


def _check_fit(
    scored: Scored, skeleton: Skeleton, checkpoint: Path, warn: Log, config: SelectConfig,
    foreign: ForeignModel | None = None,
) -> dict | None:  # fmt: skip
    fit = labelled_fit(scored.labelled_cache, skeleton, metric=config.metric)
    if fit is not None and fit["model"] <= fit["mean_pose"]:
        fed = fed_text(config.input_size, config.normalize)
        if foreign is None:
            why = ("It is undertrained or fed at another --input-size or --normalize than it "
                   f"was trained with ({fed} now): its scores and pre-annotations are close to "
                   "noise. Train longer (eglpp train --epochs) or give its training's "
                   "--input-size and --normalize, and select again.")  # fmt: skip
        else:
            why = (f"Your network (--model {foreign.spec}) reads these inputs no better than "
                   f"that: check that it is trained and that it takes {fed} (--input-size, "
                   "--normalize), then select again: its scores and pre-annotations are close "
                   "to noise.")  # fmt: skip
        warn(
            f"warning: on its own labelled set, {checkpoint} reaches {fit['metric']} "
            f"{100 * fit['model']:.1f} %, no better than the mean-pose baseline (the labelled "
            f"set's average pose for every image: {100 * fit['mean_pose']:.1f} %). {why}"
        )
    return fit


def _report_skipped(out: Path, scored: Scored, n_candidates: int, budget: int, warn: Log):
    outputs.write_skipped(out, scored.skipped)
    for s in scored.skipped:
        where = "" if Path(s["where"]).resolve() == Path(s["path"]) else f" ({s['where']})"
        warn(f"warning: skipped pool image {s['path']}{where}: {s['reason']}")
    if scored.skipped and budget > len(scored.scores):
        raise ValueError(
            f"--budget {budget}: only {len(scored.scores)} of the {n_candidates} "
            f"candidates can be read ({len(scored.skipped)} skipped, listed in "
            f"{out / 'skipped.json'})"
        )


def check_approx(
    strategy: Strategy,
    model: StackedHourglass | ModelContract,
    aux: nn.Module | None,
    skeleton: Skeleton,
    scored: Scored,
    config: SelectConfig,
) -> dict:
    """Exact EGL++ on ``config.scoring.approx_check`` sampled candidates of ``scored`` against
    their approximate scores (:func:`~eglpp.scoring.approx_check.approx_agreement`), with
    ``"positions"`` (in ``scored``'s rows; sampled from ``config.seed``)."""
    n = min(config.scoring.approx_check, len(scored.scores))
    if n < 3:
        raise ValueError(
            f"--check-approx {config.scoring.approx_check}: needs at least 3 candidates"
        )
    rng = np.random.default_rng([config.seed, 0xC4EC])
    positions = np.sort(rng.choice(len(scored.scores), size=n, replace=False))
    sample = scored.pool.subset(positions).dataset(skeleton, config.input_size, config.box_scale)
    inputs = pool_inputs(
        frozenset({"pair_gradnorms"}), model, aux, sample, scored.labelled_set,
        batch_size=config.batch_size, device=config.device, sigma=config.sigma,
        scoring=config.scoring, cache=scored.labelled_cache,
    )  # fmt: skip
    nb, p = scored.details["neighbours"], scored.details["p"]

    def exact_gradnorms(rows: np.ndarray) -> np.ndarray:  # the sample is rows, in order
        return inputs.pair_gradnorms(nb[rows], strategy.label_source)

    check = approx_agreement(scored.scores, p, nb, exact_gradnorms, positions)
    del check["rows"], check["exact"]
    return {**check, "positions": positions.tolist()}


def _approx_check(strategy, model, aux, lab, scored, config, log: Log, warn: Log) -> dict:
    check = check_approx(strategy, model, aux, lab.annotations.skeleton, scored, config)
    log(
        f"approx vs exact on {check['n']} sampled candidates: Spearman "
        f"{check['spearman']:.4f}, top-{check['top']} overlap {check['top_overlap']:.2f}"
    )
    if not check["passes"]:
        warn(
            f"warning: --estimator approx ranks below the gate (Spearman >= "
            f"{GATE['spearman']}, top-10% overlap >= {GATE['top_overlap']}) on this pool: "
            "raise --exact-neighbours or use --estimator exact"
        )
    return check


def _write(out, scored, query, lab, config, source: dict, strategy) -> None:
    nb, weight, kind = outputs.neighbours_of(scored, query, config.n_neighbours)
    outputs.write_tables(out, scored, query, nb, weight, kind, lab.names)
    info = {"strategy": strategy.name, **source, "pre_annotations": config.pre_annotate}
    doc = outputs.selection_coco(scored, query, lab.annotations.skeleton, config, info)
    atomic_write_json(out / "selection_coco.json", doc)
    outputs.contact_sheet(out / "contact_sheet.png", scored, query, nb, weight, kind, lab, config)


def _check_out(out: Path, config: SelectConfig, overwrite: bool) -> None:
    """Before any work: ``out`` holds no other command's output, no other estimator's scores."""
    if not overwrite:
        refuse_other_kind(out, "selection")
        check_estimator(out, config)


def _network(checkpoint, model: ForeignModel | None, strategy, lab, config: SelectConfig):
    """``(checkpoint (the file naming the scores), the --model network or None, the summary's
    source, the network, its auxiliary head)`` of ``--checkpoint`` or ``--model``."""
    if model is None:
        checkpoint = Path(checkpoint)
        source = {"checkpoint": str(checkpoint.resolve())}
        return (checkpoint, None, source, *_load(checkpoint, strategy, lab.annotations.skeleton))
    foreign = model
    source = {"model": foreign.spec, "weights": str(foreign.weights or ""),
              "embedding": foreign.contract.embedding,
              "prediction": foreign.contract.prediction,
              **({"loss": foreign.loss} if foreign.loss else {})}  # fmt: skip
    net, aux = _load_foreign(foreign, strategy, lab.annotations.skeleton, config)
    return foreign.identity, foreign, source, net, aux


def _check_metric(config: SelectConfig, skeleton: Skeleton) -> None:
    """``--pck-normaliser torso`` needs the skeleton's torso joints."""
    if config.metric == "pck" and not skeleton.has_torso:
        raise ValueError(f"--pck-normaliser torso: the {skeleton.name} skeleton has no "
                         "left_shoulder and right_hip; use bbox")  # fmt: skip


def run_select(
    checkpoint: str | Path | None,
    labelled: str | Path,
    pool: str | Path,
    out: str | Path,
    config: SelectConfig,
    *,
    model: ForeignModel | None = None,
    images_root: str | Path | None = None,
    progress: bool = True,
    log: Log = print,
    warn: Log | None = None,
    overwrite: bool = False,
) -> dict:
    """Library entry of ``eglpp select``; returns a summary dict (also ``OUT/summary.json``).

    ``log`` gets progress messages, ``warn`` (default ``log``) one line per pool image that
    cannot be read and is skipped (all of them are listed in ``OUT/skipped.json``), and one
    when the checkpoint is no better than the mean-pose baseline on the labelled set
    (:func:`labelled_fit`, also in the summary as ``labelled_fit``). With ``model`` (the
    user's network, ``--model``: :mod:`~eglpp.practitioner.foreign`) ``checkpoint`` is None.

    ``out`` may hold this same selection (it is resumed) but no other output, and no other
    selection (:func:`~eglpp.practitioner.settings.check_same_selection`) unless ``overwrite``.
    """
    check_device(config.device)
    out, warn, strategy = Path(out), warn or log, config.strategy
    _check_out(out, config, overwrite)
    lab = load_labelled(labelled, images_root=images_root, box_scale=config.box_scale)
    check_labelled_joints(lab)
    _check_metric(config, lab.annotations.skeleton)
    checkpoint, foreign, source, model, aux = _network(checkpoint, model, strategy, lab, config)
    candidates, n_pool = _candidates(pool, lab, config.budget)
    fp = fingerprint(checkpoint, lab, candidates, config, source)
    if not overwrite:
        check_same_selection(out, config, fp)
    log(
        f"{len(candidates)} candidates ({n_pool - len(candidates)} pool images already "
        f"labelled), {len(lab.annotations)} labelled people; scoring with {strategy.name}"
    )
    scored = _score(strategy, model, aux, lab, candidates, out, config, fp, progress, log)
    _report_skipped(out, scored, len(candidates), config.budget, warn)
    if scored.labelled_cache.gradnorm_method:
        log(f"gradient norms: {scored.labelled_cache.gradnorm_method}")
    check = None
    if config.scoring.approx_check:
        check = _approx_check(strategy, model, aux, lab, scored, config, log, warn)
    fit = _check_fit(scored, lab.annotations.skeleton, checkpoint, warn, config, foreign)
    query = choose(strategy, scored, config)
    _write(out, scored, query, lab, config, source, strategy)
    summary = {
        "strategy": strategy.name,
        "hyperparameters": strategy.hyperparameters(),
        "n_candidates": len(candidates),
        "n_skipped": len(scored.skipped),
        "estimator": estimator_of(config.to_dict()),
        "gradnorm_method": scored.labelled_cache.gradnorm_method,  # what "auto" ran (or None)
        **({"approx_check": check} if check is not None else {}),
        "n_labelled": len(lab.annotations),
        "labelled_fit": fit,
        "budget": config.budget,
        "loss": source.get("loss", "eglpp's (heatmap or coordinate mean squared error)"),
        "sigma": config.sigma,
        "input_size": list(input_hw(config.input_size)),  # (H, W) px fed to the network
        "normalize": config.normalize.record(),  # applied to the RGB in [0, 1] it was fed
        "selected": [scored.pool.names[i] for i in query],
        "chunks_reused": scored.reused,
        "chunks_computed": scored.computed,
        "fingerprint": fp,
        "config": config.to_dict(),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
