"""``eglpp import``: merge the annotations an annotation tool returned into the labelled set.

A file command: it reads and writes annotation files only, and starts without torch.
"""

from __future__ import annotations

from pathlib import Path

import typer

from eglpp.cli.label_studio import import_from_label_studio, label_studio_target
from eglpp.io import check_new_file
from eglpp.practitioner.heldout import carry_record
from eglpp.practitioner.merge import merge_annotations

__all__ = ["import_annotations"]


def import_annotations(
    labelled: Path = typer.Option(..., help="The labelled set the selection was made against."),
    annotations: Path | None = typer.Option(
        None, help="COCO keypoints exported by the annotation tool (or --label-studio)."
    ),
    out: Path = typer.Option(..., help="Merged COCO keypoints .json to write."),
    selection: Path = typer.Option(
        ..., help="The selection answered: eglpp select's output folder or its selection_coco.json."
    ),
    images_root: Path | None = typer.Option(None, help="Folder the labelled file names are in."),
    box_scale: float = typer.Option(1.25, help="Crop side / longer side of a person box."),
    accept_unchanged: bool = typer.Option(
        False,
        "--accept-unchanged",
        help="Merge people whose keypoints are still the predicted pre-annotations (refused "
        "by default: uncorrected guesses would become labels).",
    ),
    label_studio: str | None = typer.Option(
        None,
        "--label-studio",
        help="Read the selection's finished tasks from this Label "
        "Studio server instead of --annotations (token: LABEL_STUDIO_API_KEY).",
    ),
    project: int | None = typer.Option(None, help="--label-studio: the project's id."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a file already at --out (refused by default)."
    ),
) -> None:
    """Merge annotations returned by an annotation tool into the labelled set (COCO keypoints).

    People whose keypoints are still the predicted pre-annotations are refused unless
    --accept-unchanged. With --label-studio URL --project ID instead of --annotations, the
    selection's finished tasks are read from Label Studio; open ones are listed, not imported.

    Example:

        eglpp import --labelled labelled.json --annotations cvat_export.json \\
            --selection sel1 --out labelled2.json
    """

    sources = {"--labelled": labelled, "--annotations": annotations or ""}
    check_new_file(out, overwrite=overwrite, inputs=sources)
    if (annotations is None) == (label_studio is None):
        raise ValueError("eglpp import: give --annotations FILE or --label-studio URL, one")
    merge = {"images_root": images_root, "box_scale": box_scale,
             "accept_unchanged": accept_unchanged}  # fmt: skip
    studio = label_studio_target(label_studio, project)  # None without them
    if studio is None:
        report = merge_annotations(labelled, annotations, selection, out, **merge)
    else:
        report = import_from_label_studio(studio, project, labelled, selection, out, **merge)
    unchanged = report["unchanged_pre_annotations"]
    typer.echo(
        f"added {report['added_people']} people on {report['added_images']} images to "
        f"{report['labelled_images']} labelled images"
        + (f" ({unchanged} of them unchanged pre-annotations, accepted)" if unchanged else "")
        + f"; wrote {out}"
    )
    carried = carry_record(labelled, out)
    if carried is not None:
        typer.echo(f"held-out test images of {labelled} carried over: {carried}")
    if report["skipped_images"]:
        typer.echo(f"skipped {len(report['skipped_images'])} returned images without annotations")
    if report["already_merged"]:
        names = report["already_merged"]
        typer.echo(f"skipped {len(names)} returned images already merged into {labelled} "
                   f"(the same keypoints): {', '.join(names[:5])}"
                   + (f", … ({len(names) - 5} more)" if len(names) > 5 else ""))  # fmt: skip
    typer.echo(f"next: eglpp train {out} --out … (retrain), then eglpp select --labelled {out} …")
