"""What ``eglpp train``'s ``--pck-normaliser`` and ``--learning-loss`` choose."""

from __future__ import annotations

import torch
import typer

from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.normalisers import METRICS
from eglpp.pose.skeleton import Skeleton
from eglpp.strategies import LearningLoss

__all__ = ["NORMALISERS", "chosen_metric", "fit_metric", "loss_head"]

#: ``--pck-normaliser`` values and their metric (eglpp.pose.metrics.METRICS).
NORMALISERS = {normaliser: metric for metric, (normaliser, _, _) in METRICS.items()}


def loss_head(model: StackedHourglass, seed: int) -> torch.nn.Module:
    """Learning Loss's loss-prediction head (the strategy's default settings, which
    ``eglpp select --strategy learning-loss`` builds to load it) for ``model``, drawn from
    ``seed`` without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LearningLoss().auxiliary(model.feature_channels())


def chosen_metric(normaliser: str | None, usual: str, skeleton: Skeleton) -> str:
    """The metric of ``--pck-normaliser`` (None: the dataset's ``usual`` one), refused where
    the skeleton or dataset lacks what it needs (torso joints; head boxes, MPII's only)."""
    if normaliser is None:
        return usual
    if normaliser not in NORMALISERS:
        raise typer.BadParameter(
            f"expected one of {', '.join(NORMALISERS)}, got {normaliser!r}",
            param_hint="--pck-normaliser",
        )
    if normaliser == "torso" and not skeleton.has_torso:
        raise typer.BadParameter(
            f"torso needs a left_shoulder and a right_hip; the {skeleton.name} skeleton "
            f"({', '.join(skeleton.joints)}) lacks some: use bbox",
            param_hint="--pck-normaliser",
        )
    if normaliser == "head" and usual != "pckh":
        raise typer.BadParameter(
            "head needs head boxes, which only MPII's annotations have: use torso or bbox",
            param_hint="--pck-normaliser",
        )
    return NORMALISERS[normaliser]


def fit_metric(normaliser: str | None) -> str | None:
    """``eglpp select --pck-normaliser``'s metric (None: the skeleton's default). A labelled
    COCO set has no head boxes: head is refused; torso on a skeleton without one is refused
    once the labelled set is read (:func:`eglpp.practitioner.run.run_select`)."""
    if normaliser is None:
        return None
    if normaliser not in NORMALISERS or normaliser == "head":
        raise typer.BadParameter(
            f"expected torso or bbox (a labelled COCO set has no head boxes), got {normaliser!r}",
            param_hint="--pck-normaliser",
        )
    return NORMALISERS[normaliser]
