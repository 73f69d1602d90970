"""``eglpp run --dataset``: a built-in dataset by name, or ``coco:FILE``, the experiment on a
user's own labelled COCO keypoints file (its relative image names resolve against ``--images
DIR``, else the file's ``info.images_root``, else its folder; see
:mod:`eglpp.experiment.coco_data` for the split)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from eglpp.experiment.config import ExperimentConfig
from eglpp.pose.datasets.coco import read_coco

__all__ = ["dataset_flags", "fit_to_file"]


def dataset_flags(dataset: str | None, data_root: Path | None, images: Path | None) -> dict:
    """The config fields of ``--dataset`` (``coco:FILE`` is dataset ``coco`` with ``data_root``
    FILE), ``--data-root`` and ``--images``.

    >>> dataset_flags("coco:ann/people.json", None, Path("photos"))["data_root"]
    'ann/people.json'
    """
    fields: dict[str, Any] = {"dataset": dataset, "data_root": data_root, "images_root": images}
    if dataset is not None and dataset.startswith("coco:"):
        path = dataset.removeprefix("coco:")
        if not path:
            raise typer.BadParameter("coco: needs its file, e.g. coco:annotations.json",
                                     param_hint="--dataset")  # fmt: skip
        if data_root is not None and Path(data_root) != Path(path):
            raise typer.BadParameter(f"names the file {path}; --data-root {data_root} another",
                                     param_hint="--dataset")  # fmt: skip
        fields.update(dataset="coco", data_root=path)
    elif images is not None and dataset != "coco":
        raise typer.BadParameter("applies to --dataset coco:FILE only", param_hint="--images")
    return {k: None if v is None else str(v) for k, v in fields.items()}


def fit_to_file(cfg: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """On a COCO file, the model's ``n_joints`` (and, for a skeleton without shoulders and
    hips, the metric ``pckb``) from its keypoints, unless the settings give them."""
    if cfg.dataset != "coco" or cfg.data_root is None:
        return cfg
    if not Path(cfg.data_root).is_file():
        raise typer.BadParameter(f"coco:{cfg.data_root}: no such file", param_hint="--dataset")
    skeleton = read_coco(cfg.data_root).skeleton
    if "n_joints" not in (overrides.get("model") or {}):
        cfg = replace(cfg, model=replace(cfg.model, n_joints=skeleton.n_joints))
    if overrides.get("metric") is None and not skeleton.has_torso:
        cfg = replace(cfg, metric="pckb")
    return cfg
