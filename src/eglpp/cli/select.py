"""``eglpp select``: the practitioner's annotation round trip, its first step.

select → annotate (Label Studio through its API with ``--label-studio``; or a tool that imports
COCO keypoints, e.g. CVAT: ``selection_coco.json`` in, COCO keypoints out) → import
(:mod:`eglpp.cli.annotations`) → retrain → select again.
"""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from eglpp.cli.label_studio import (
    label_studio_target,
    push_to_label_studio,
)
from eglpp.cli.train_choices import fit_metric
from eglpp.devices import check_device
from eglpp.io import check_output, run_lock
from eglpp.pose.datasets.preprocess import canonical_size, normalization, parse_input_size
from eglpp.practitioner.foreign import ForeignModel, load_foreign
from eglpp.practitioner.run import run_select
from eglpp.practitioner.select import SelectConfig
from eglpp.practitioner.settings import (
    build_scoring,
    build_strategy,
    checkpoint_settings,
    parse_params,
)

__all__ = ["select"]


def _foreign(model, weights, embedding, prediction, input_size, loss) -> ForeignModel | None:
    """The ``--model`` network, or None; the flags that belong to it refused without it."""
    if model is None:
        given = [f for f, v in (("--weights", weights), ("--embedding", embedding),
                                ("--prediction", prediction), ("--loss", loss))
                 if v is not None]  # fmt: skip
        if given:
            raise ValueError(f"{', '.join(given)}: applies to --model only")
        return None
    if input_size is None:
        raise ValueError(f"--model {model}: --input-size is needed (the network's input px)")
    return load_foreign(model, weights, embedding, prediction, input_size, loss)


def _approx_settings(estimator, exact_neighbours, probes, check_approx) -> dict:
    """The approx settings given, refused unless ``--estimator approx``."""
    approx = {"n_exact": exact_neighbours, "n_probes": probes, "approx_check": check_approx}
    approx = {k: v for k, v in approx.items() if v is not None}  # the approx settings given
    if approx and estimator != "approx":
        flags = {"n_exact": "--exact-neighbours", "n_probes": "--probes"}
        flags["approx_check"] = "--check-approx"
        given = ", ".join(f"{flags[k]} {v}" for k, v in approx.items())
        raise ValueError(f"{given}: applies to --estimator approx only")
    return approx


def select(
    checkpoint: Path | None = typer.Option(
        None, help="Model checkpoint (eglpp train / eglpp run); or --model."
    ),
    model: str | None = typer.Option(
        None,
        help="Your own network instead of --checkpoint: PKG.MODULE:FACTORY, a function of your "
        "code that builds the torch.nn.Module, imported the way `uvicorn app:main` is (from "
        "the current folder or an installed package). Needs --input-size.",
    ),
    weights: Path | None = typer.Option(
        None, help="--model: its state dict (.pt), read with torch.load(weights_only=True)."
    ),
    embedding: str | None = typer.Option(
        None, help="--model: submodule whose output, averaged over space, is the embedding."
    ),
    prediction: str | None = typer.Option(
        None,
        help="--model: which output is the prediction (heatmaps (B, J, h, w) or coordinates "
        "(B, J, 2), input px): a dict key, NamedTuple field or tuple index; default the output.",
    ),
    loss: str | None = typer.Option(
        None,
        help="--model: its training loss, PKG.MODULE:FN (imported as --model is), called on one "
        "example as FN(prediction, target, weight) -> scalar; target: the labelled joints' "
        "heatmaps (σ --sigma) or coordinates, weight (1, J): 1 where annotated. Default: "
        "eglpp's heatmap or coordinate mean squared error.",
    ),
    labelled: Path = typer.Option(
        ..., help="Labelled set: COCO keypoints .json, LSP/LSPET joints.mat, MPII .mat/.json."
    ),
    pool: Path = typer.Option(..., help="Folder of images, or a .csv/.json list with boxes."),
    budget: int = typer.Option(..., help="How many images to select."),
    out: Path = typer.Option(
        ...,
        help="Output folder (resumable: the same command reuses its finished chunks; a folder "
        "holding another selection or output is refused).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace another selection (or other output) in --out."
    ),
    strategy: str = typer.Option(
        "egl++", help="random | coreset | multipeak | learning-loss | egl++"
    ),
    param: list[str] = typer.Option([], help="Strategy hyperparameter NAME=VALUE, repeatable."),
    estimator: str = typer.Option(
        "exact", help="EGL++ gradient norms: exact (K products per image) | approx (M + 1 + R)."
    ),
    exact_neighbours: int | None = typer.Option(
        None,
        help="--estimator approx: the M most probable neighbours taken exactly (default 12).",
    ),
    probes: int | None = typer.Option(
        None, help="--estimator approx: random-sign probes R of the other neighbours (default 0)."
    ),
    check_approx: int | None = typer.Option(
        None,
        help="--estimator approx: score N random candidates exactly too and report how well "
        "approx ranks them (Spearman, top-10% overlap; summary.json).",
    ),
    gradnorm: str = typer.Option(
        "all", help="EGL++ gradient-norm parameters: all | conv_linear (the paper's) | last."
    ),
    gradnorm_method: str = typer.Option(
        "auto",
        help="EGL++ gradient norms computed by auto (hooks where every parameter is a layer's, "
        "else vmap) | vmap (torch.func) | hooks (per layer).",
    ),
    max_memory: str | None = typer.Option(
        None,
        help="Memory the gradient norms' chunks of (image, neighbour) pairs may take "
        "(e.g. 8GiB; default 2 GiB on the CPU).",
    ),
    input_size: str | None = typer.Option(
        None, help="Input px: S (square) or H W / HxW, e.g. 256x192 (default: from train.json)."
    ),
    normalize: str | None = typer.Option(
        None,
        help="What the network takes: unit (RGB in [0, 1]) | imagenet (mean/std) | none "
        "(0-255) | MEAN/STD as R,G,B/R,G,B (default: from train.json, else unit).",
    ),
    pck_normaliser: str | None = typer.Option(
        None, help="The labelled fit check's PCK: torso | bbox (default: torso, else bbox)."
    ),
    sigma: float | None = typer.Option(None, help="Label heatmap σ (default: from train.json)."),
    pre_annotate: str = typer.Option("predicted", help="selection_coco.json: predicted | empty"),
    images_root: Path | None = typer.Option(None, help="Folder the labelled file names are in."),
    box_scale: float = typer.Option(1.25, help="Crop side / longer side of a person box."),
    chunk_size: int = typer.Option(256, help="Pool images per resumable chunk."),
    batch_size: int = typer.Option(16),
    neighbours: int = typer.Option(3, help="Labelled neighbours per selected image."),
    sheet_rows: int = typer.Option(16, help="Selected images on the contact sheet."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:1 ..."),
    seed: int = typer.Option(0),
    threads: int | None = typer.Option(None, help="torch CPU threads."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    label_studio: str | None = typer.Option(
        None,
        "--label-studio",
        help="Label Studio server URL: one task per selected image in "
        "--project (API token: environment variable LABEL_STUDIO_API_KEY).",
    ),
    project: int | None = typer.Option(None, help="--label-studio: the project's id."),
) -> None:
    """Choose the next images to annotate from a pool, with a trained checkpoint.

    Writes selection.csv, selection_coco.json (to annotate: predicted keypoints as
    pre-annotations, or empty), contact_sheet.png, scores.csv and summary.json. With
    --label-studio URL --project ID, also one Label Studio task per selected image (the
    prediction to correct, eglpp's reasons), none made twice.

    Example:

        eglpp select --checkpoint runs/train/model.pt --labelled labelled.json \\
            --pool photos/ --budget 50 --strategy egl++ --param k=30 --out sel1

    With your own network: --model mynet.models:build --weights w.pt --embedding layer4
    --input-size 256x192 (H×W) instead of --checkpoint. eglpp feeds the network H×W px RGB in
    [0, 1]; --normalize imagenet (or MEAN/STD) for one trained on normalised images.
    """

    check_device(device)  # before any file is read
    studio = label_studio_target(label_studio, project)  # before scoring: it answers
    if threads:
        torch.set_num_threads(threads)
    approx = _approx_settings(estimator, exact_neighbours, probes, check_approx)
    if (checkpoint is None) == (model is None):
        raise ValueError("--checkpoint or --model: give exactly one (the network that scores)")
    size = None if input_size is None else parse_input_size(input_size)
    foreign = _foreign(model, weights, embedding, prediction, size, loss)
    found = checkpoint_settings(checkpoint) if checkpoint is not None else {}
    size = size or found.get("input_size")
    if size is None:
        raise ValueError(
            f"--input-size is needed: no train.json beside {checkpoint} records the input size"
        )
    config = SelectConfig(
        budget=budget, strategy=build_strategy(strategy, parse_params(param), estimator),
        scoring=build_scoring(
            gradnorm=gradnorm, gradnorm_method=gradnorm_method, max_memory=max_memory, **approx
        ),
        input_size=canonical_size(size), metric=fit_metric(pck_normaliser),
        normalize=normalization(normalize or found.get("normalize")),
        batch_size=batch_size, chunk_size=chunk_size, device=device,
        sigma=float(sigma or found.get("sigma", 1.0)), seed=seed, box_scale=box_scale,
        pre_annotate=pre_annotate, n_neighbours=neighbours, sheet_rows=sheet_rows,
    )  # fmt: skip
    with run_lock(check_output(out), log=typer.echo):  # the tasks too: one writer at a time
        summary = run_select(
            checkpoint, labelled, pool, out, config, model=foreign, images_root=images_root,
            progress=progress, log=typer.echo, warn=lambda message: typer.echo(message, err=True),
            overwrite=overwrite,
        )  # fmt: skip
        typer.echo(
            f"selected {summary['budget']} of {summary['n_candidates']} with "
            f"{summary['strategy']} ({summary['chunks_computed']} chunks scored, "
            f"{summary['chunks_reused']} reused); "
            f"wrote {out}/selection.csv, selection_coco.json, contact_sheet.png"
        )
        if summary["n_skipped"]:
            typer.echo(f"skipped {summary['n_skipped']} unreadable pool images: {out}/skipped.json")
        if studio is not None:
            push_to_label_studio(studio, project, out)
