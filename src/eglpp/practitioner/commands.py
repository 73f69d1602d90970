"""``eglpp select`` and ``eglpp import``: the practitioner's annotation round trip.

select → annotate in a tool (Label Studio, CVAT: import ``selection_coco.json``, export COCO
keypoints) → import → retrain → select again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

__all__ = ["select", "import_annotations", "run_select"]


def _load(checkpoint: Path, strategy, labelled_skeleton):
    """The model (and the strategy's auxiliary module) from ``checkpoint``, checked."""
    from eglpp.pose.checkpoint import load_checkpoint, load_model

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
                f"its auxiliary head trained with the model (eglpp run saves them in "
                f"run-XX/{strategy.name}/cycle-YY/model.pt): {str(exc)[:300]}"
            ) from exc
    return model, aux


def run_select(
    checkpoint,
    labelled,
    pool,
    out,
    config,
    *,
    images_root=None,
    progress=True,
    log=print,
    warn=None,
):
    """Library entry of ``eglpp select``; returns a summary dict (also ``OUT/summary.json``).

    ``log`` gets progress messages, ``warn`` (default ``log``) one line per pool image that
    cannot be read and is skipped (all of them are listed in ``OUT/skipped.json``)."""
    from eglpp.devices import check_device
    from eglpp.io import atomic_write_json
    from eglpp.practitioner import outputs
    from eglpp.practitioner.labelled import load_labelled
    from eglpp.practitioner.pool import read_pool
    from eglpp.practitioner.select import choose, fingerprint, score_pool
    from eglpp.practitioner.settings import check_estimator, estimator_of, strategy_params
    from eglpp.strategies import make_strategy

    check_device(config.device)
    checkpoint, out, warn = Path(checkpoint), Path(out), warn or log
    strategy = make_strategy(config.strategy, **strategy_params(config))
    check_estimator(out, config)
    lab = load_labelled(labelled, images_root=images_root, box_scale=config.box_scale)
    model, aux = _load(checkpoint, strategy, lab.annotations.skeleton)
    everything = read_pool(pool)
    labelled_paths = {p.resolve() for p in lab.annotations.image_paths}
    keep = [i for i, p in enumerate(everything.paths) if p.resolve() not in labelled_paths]
    if not keep:
        raise ValueError(f"--pool {pool}: every image is already in the labelled set")
    candidates = everything.subset(keep)
    from eglpp.selection import check_budget

    check_budget(config.budget, len(candidates))
    fp = fingerprint(checkpoint, lab, candidates, config)
    partial = out / "partial" / fp
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "select_config.json", {**dataclasses.asdict(config), "fingerprint": fp})
    log(
        f"{len(candidates)} candidates ({len(everything) - len(candidates)} pool images already "
        f"labelled), {len(lab.annotations)} labelled people; scoring with {strategy.name}"
    )
    try:
        scored = score_pool(
            strategy, model, aux, lab, candidates, partial, config, progress=progress, log=log
        )
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(str(exc)) from exc
    outputs.write_skipped(out, scored.skipped)
    for s in scored.skipped:
        where = "" if Path(s["where"]).resolve() == Path(s["path"]) else f" ({s['where']})"
        warn(f"warning: skipped pool image {s['path']}{where}: {s['reason']}")
    if scored.skipped and config.budget > len(scored.scores):
        raise ValueError(
            f"--budget {config.budget}: only {len(scored.scores)} of the {len(candidates)} "
            f"candidates can be read ({len(scored.skipped)} skipped, listed in "
            f"{out / 'skipped.json'})"
        )
    check = None
    if config.check_approx:
        from eglpp.practitioner.approx_check import check_approx
        from eglpp.stats import RANK_GATE as GATE

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
    query = choose(strategy, scored, config)
    nb, weight, kind = outputs.neighbours_of(scored, query, config.n_neighbours)
    outputs.write_tables(out, scored, query, nb, weight, kind, lab.names)
    info = {"strategy": strategy.name, "checkpoint": str(checkpoint.resolve()),
            "pre_annotations": config.pre_annotate}  # fmt: skip
    doc = outputs.selection_coco(scored, query, lab.annotations.skeleton, config, info)
    atomic_write_json(out / "selection_coco.json", doc)
    outputs.contact_sheet(out / "contact_sheet.png", scored, query, nb, weight, kind, lab, config)
    summary = {
        "strategy": strategy.name,
        "hyperparameters": strategy.hyperparameters(),
        "n_candidates": len(candidates),
        "n_skipped": len(scored.skipped),
        "estimator": estimator_of(dataclasses.asdict(config)),
        **({"approx_check": check} if check is not None else {}),
        "n_labelled": len(lab.annotations),
        "budget": config.budget,
        "selected": [scored.pool.names[i] for i in query],
        "chunks_reused": scored.reused,
        "chunks_computed": scored.computed,
        "fingerprint": fp,
        "config": dataclasses.asdict(config),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def select(
    checkpoint: Path = typer.Option(..., help="Model checkpoint (eglpp train / eglpp run)."),
    labelled: Path = typer.Option(
        ..., help="Labelled set: COCO keypoints .json, LSP/LSPET joints.mat, MPII .mat/.json."
    ),
    pool: Path = typer.Option(..., help="Folder of images, or a .csv/.json list with boxes."),
    budget: int = typer.Option(..., help="How many images to select."),
    out: Path = typer.Option(..., help="Output folder (resumable: finished chunks are reused)."),
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
    input_size: int | None = typer.Option(None, help="Input px (default: from train.json)."),
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
) -> None:
    """Choose the next images to annotate; writes selection.csv, selection_coco.json (predicted
    keypoints as pre-annotations, or empty), contact_sheet.png, scores.csv, summary.json.

    Example:

        eglpp select --checkpoint runs/train/model.pt --labelled labelled.json
        --pool photos/ --budget 50 --strategy egl++ --param k=30 --out sel1
    """
    import torch

    from eglpp.practitioner.select import SelectConfig
    from eglpp.practitioner.settings import checkpoint_settings, parse_params

    if threads:
        torch.set_num_threads(threads)
    approx = {"n_exact": exact_neighbours, "n_probes": probes, "check_approx": check_approx}
    approx = {k: v for k, v in approx.items() if v is not None}  # the approx settings given
    if approx and estimator != "approx":
        flags = {"n_exact": "--exact-neighbours", "n_probes": "--probes"}
        flags["check_approx"] = "--check-approx"
        given = ", ".join(f"{flags[k]} {v}" for k, v in approx.items())
        raise ValueError(f"{given}: applies to --estimator approx only")
    found = checkpoint_settings(checkpoint)
    size = input_size or found.get("input_size")
    if size is None:
        raise ValueError(
            f"--input-size is needed: no train.json beside {checkpoint} records the input size"
        )
    config = SelectConfig(
        budget=budget, strategy=strategy, hyperparameters=parse_params(param),
        input_size=int(size), batch_size=batch_size, chunk_size=chunk_size, device=device,
        sigma=float(sigma or found.get("sigma", 1.0)), seed=seed, box_scale=box_scale,
        pre_annotate=pre_annotate, n_neighbours=neighbours, sheet_rows=sheet_rows,
        estimator=estimator, **approx,
    )  # fmt: skip
    summary = run_select(
        checkpoint, labelled, pool, out, config, images_root=images_root, progress=progress,
        log=typer.echo, warn=lambda message: typer.echo(message, err=True),
    )  # fmt: skip
    typer.echo(
        f"selected {summary['budget']} of {summary['n_candidates']} with {summary['strategy']} "
        f"({summary['chunks_computed']} chunks scored, {summary['chunks_reused']} reused); "
        f"wrote {out}/selection.csv, selection_coco.json, contact_sheet.png"
    )
    if summary["n_skipped"]:
        typer.echo(f"skipped {summary['n_skipped']} unreadable pool images: {out}/skipped.json")


def import_annotations(
    labelled: Path = typer.Option(..., help="The labelled set the selection was made against."),
    annotations: Path = typer.Option(..., help="COCO keypoints exported by the annotation tool."),
    out: Path = typer.Option(..., help="Merged COCO keypoints .json to write."),
    selection: Path = typer.Option(
        ..., help="The selection answered: eglpp select's output folder or its selection_coco.json."
    ),
    images_root: Path | None = typer.Option(None, help="Folder the labelled file names are in."),
    box_scale: float = typer.Option(1.25, help="Crop side / longer side of a person box."),
) -> None:
    """Merge annotations returned by an annotation tool into the labelled set (COCO keypoints).

    Example:

        eglpp import --labelled labelled.json --annotations cvat_export.json
        --selection sel1 --out labelled2.json
    """
    from eglpp.practitioner.merge import merge_annotations

    report = merge_annotations(
        labelled, annotations, selection, out, images_root=images_root, box_scale=box_scale
    )
    typer.echo(
        f"added {report['added_people']} people on {report['added_images']} images to "
        f"{report['labelled_images']} labelled images; wrote {out}"
    )
    if report["skipped_images"]:
        typer.echo(f"skipped {len(report['skipped_images'])} returned images without annotations")
    if report["unchanged_pre_annotations"]:
        typer.echo(
            f"note: {report['unchanged_pre_annotations']} annotations are the unchanged "
            "predicted pre-annotations"
        )
