"""``eglpp evaluate MODEL DATA``: a trained model's PCK on annotations of the user's choice.

Every PCK this command and ``eglpp train`` print carries its standard error over the people
tested (:func:`~eglpp.pose.metrics.pck_se`), since a test set of a few dozen images moves PCK
by points: two models compared on the same images (``--held-out``: a labelled set's recorded
test images, :mod:`eglpp.practitioner.heldout`) differ by more than noise only where the
difference is large against it.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer

from eglpp.devices import check_device
from eglpp.pose.checkpoint import load_model
from eglpp.pose.datasets.images import ImagePoseDataset
from eglpp.pose.datasets.preprocess import canonical_size, normalization, parse_input_size
from eglpp.pose.inference import evaluate
from eglpp.pose.normalisers import default_metric
from eglpp.practitioner.heldout import read_record, record_path
from eglpp.practitioner.labelled import load_labelled
from eglpp.practitioner.settings import checkpoint_settings

__all__ = ["evaluate_model", "score_text", "oks_text"]


def score_text(scores: dict, *, unit: bool = True) -> str:
    """``PCK@0.2 61.43 ± 2.90 % (± standard error, 280 joints)`` of an ``evaluate`` result
    (fractions); without ``unit``, the number and its error only.

    >>> score_text({"metric": "PCK@0.2", "mean": 0.6143, "se": 0.029, "n_joints": 280})
    'PCK@0.2 61.43 ± 2.90 % (± standard error, 280 joints)'
    """
    se = scores.get("se")
    value = f"{100 * scores['mean']:.2f}"
    value += " %" if se is None or not math.isfinite(se) else f" ± {100 * se:.2f} %"
    if not unit:
        return value
    joints = f"{scores['n_joints']} joints" if "n_joints" in scores else ""
    why = "one person: no standard error" if se is None or not math.isfinite(se) else ""
    said = ", ".join(x for x in ("± standard error" if not why else why, joints) if x)
    return f"{scores['metric']} {value} ({said})"


def oks_text(oks: dict) -> str:
    """COCO's keypoint AP line of an ``evaluate`` result's ``"oks"`` entry.

    >>> oks_text({"metric": "OKS AP", "mean": 0.4123, "ap50": 0.8, "ap75": 0.4, "n": 30})
    "OKS AP 41.23 % (AP50 80.00, AP75 40.00: COCO's keypoint AP, 30 people)"
    """
    return (
        f"{oks['metric']} {100 * oks['mean']:.2f} % (AP50 {100 * oks['ap50']:.2f}, AP75 "
        f"{100 * oks['ap75']:.2f}: COCO's keypoint AP, {oks['n']} people)"
    )


def _sigmas(text: str | None) -> list[float] | None:
    """``--oks-sigmas 0.026,0.025,…`` as numbers (their count is checked on the skeleton)."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated numbers, got {text!r}", param_hint="--oks-sigmas"
        ) from None


def evaluate_model(
    model: Path = typer.Argument(..., help="model.pt (eglpp train, eglpp run)."),
    data: Path = typer.Argument(
        ..., help="Annotations: COCO keypoints .json, LSP/LSPET joints.mat, MPII .mat/.json."
    ),
    held_out: bool = typer.Option(
        False,
        "--held-out",
        help="COCO: only the set's held-out test images (eglpp train's record beside DATA, "
        "or --record).",
    ),
    record: Path | None = typer.Option(None, help="--held-out: the record to read."),
    images_root: Path | None = typer.Option(None, help="Folder the file names are in."),
    input_size: str | None = typer.Option(
        None, help="Input px: S or H W / HxW (default: from train.json)."
    ),
    normalize: str | None = typer.Option(
        None, help="unit | imagenet | none | MEAN/STD (default: from train.json, else unit)."
    ),
    flip_test: bool = typer.Option(False, help="Average with the flipped image's prediction."),
    batch_size: int = typer.Option(32),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:1 ..."),
    oks_sigmas: str | None = typer.Option(
        None,
        help="COCO files: per-keypoint OKS sigmas, comma-separated in the skeleton's order, for "
        "COCO's keypoint AP of a skeleton other than COCO's 17 (those have COCO's sigmas).",
    ),
) -> None:
    """Evaluate a trained model on a set of the user's choice: PCK@0.2 (PCKh@0.5 on MPII;
    PCK-bbox@0.2 for a skeleton without shoulders and hips) with its standard error; on a
    COCO file of COCO's 17 keypoints (or with --oks-sigmas) also COCO's OKS keypoint AP, the
    people's areas from the file (its "area", else its "bbox" w × h).

    Examples:

        eglpp evaluate runs/round1/model.pt labelled2.json --held-out
        eglpp evaluate runs/round2/model.pt labelled2.json --held-out

    compare two rounds on the same held-out images.
    """
    check_device(device)
    found = checkpoint_settings(model)
    size = parse_input_size(input_size) if input_size else found.get("input_size")
    norm = normalization(normalize or found.get("normalize"))
    if size is None:
        raise ValueError(f"--input-size is needed: no train.json beside {model} records it")
    if record is not None and not held_out:
        raise ValueError(f"--record {record}: applies to --held-out only")
    lab = load_labelled(data, images_root=images_root)
    ann, where = lab.annotations, f"{data}"
    if held_out:
        if lab.format != "coco":
            raise ValueError(f"--held-out: {data} is {lab.format}, not COCO: it has no record")
        path = record if record is not None else record_path(data)
        if not path.is_file():
            raise FileNotFoundError(f"--held-out: no record {path} (eglpp train {data} writes it)")
        test = {p.resolve() for p in read_record(path)}
        keep = [i for i, p in enumerate(ann.image_paths) if Path(p).resolve() in test]
        if not keep:
            raise ValueError(f"--held-out: none of the images {path} names is in {data}")
        ann, where = ann.subset(keep), f"{data}, held out ({path})"
    net = load_model(model)
    if net.config.n_joints != ann.skeleton.n_joints:
        raise ValueError(
            f"{model}: predicts {net.config.n_joints} joints, but {data} is in the "
            f"{ann.skeleton.name} skeleton ({ann.skeleton.n_joints} joints)"
        )
    # as eglpp train: PCKh on MPII, torso PCK, or PCK-bbox on a skeleton without a torso
    metric = "pckh" if lab.format == "mpii" else default_metric(ann.skeleton)
    dataset = ImagePoseDataset(ann, input_size=canonical_size(size), normalize=norm)
    scores = evaluate(net, dataset, metric=metric, batch_size=batch_size, device=device,
                      flip_test=flip_test, oks_sigmas=_sigmas(oks_sigmas))  # fmt: skip
    n_images = len({Path(p).resolve() for p in ann.image_paths})
    typer.echo(f"{score_text(scores)} on {n_images} images ({len(ann)} people) of {where}")
    if "oks" in scores:
        typer.echo(oks_text(scores["oks"]))
    elif lab.format == "coco":
        typer.echo(
            f"no OKS AP: the {ann.skeleton.name} skeleton has no standard per-keypoint sigmas "
            "(give --oks-sigmas, one per keypoint)"
            if oks_sigmas is None
            else "no OKS AP: a person's area is unknown (no 'area' or 'bbox' in the file)"
        )
