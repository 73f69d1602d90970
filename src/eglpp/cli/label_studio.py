"""``eglpp label-studio-config`` and the ``--label-studio URL --project ID`` of select/import.

The API token comes from the environment variable ``LABEL_STUDIO_API_KEY`` only
(:mod:`eglpp.practitioner.label_studio`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from eglpp.io import atomic_write_json
from eglpp.practitioner.coco import read_coco
from eglpp.practitioner.label_studio import LabelStudio, connect
from eglpp.practitioner.label_studio_tasks import (
    SKELETONS,
    import_label_studio,
    label_config,
    push_selection,
)

__all__ = ["label_studio_config", "label_studio_target", "push_to_label_studio",
           "import_from_label_studio"]  # fmt: skip


def label_studio_config(
    skeleton: str = typer.Option(
        "lsp",
        help="Joints to label: lsp (14) | mpii (16) | coco17 (17) | a COCO keypoints .json "
        "(its categories[0] keypoints, e.g. an animal's).",
    ),
    create_project: str | None = typer.Option(
        None,
        "--create-project",
        metavar="TITLE",
        help="Make a project with this config on --label-studio and print its id.",
    ),
    label_studio: str | None = typer.Option(
        None, "--label-studio", help="Label Studio server URL (token: LABEL_STUDIO_API_KEY)."
    ),
) -> None:
    """Print the Label Studio labelling config (XML) of a skeleton, or make a project with it.

    One KeyPointLabels label per joint in eglpp's joint names, on an Image; a Header shows why
    eglpp chose each image.

    Example:

        eglpp label-studio-config --skeleton lsp --create-project "people, round 1" \\
            --label-studio http://localhost:8080
    """
    if skeleton in SKELETONS:
        xml = label_config(SKELETONS[skeleton])
    elif skeleton.endswith(".json") and Path(skeleton).is_file():
        xml = label_config(read_coco(skeleton, require_keypoints=False).skeleton)
    else:
        raise ValueError(
            f"--skeleton {skeleton}: expected one of {', '.join(SKELETONS)} or a COCO keypoints "
            ".json file"
        )
    if create_project is None:
        if label_studio is not None:
            raise ValueError("--label-studio: applies with --create-project TITLE only")
        typer.echo(xml, nl=False)
        return
    if label_studio is None:
        raise ValueError("--create-project: needs --label-studio URL (the server)")
    project = connect(label_studio).create_project(create_project, xml)
    typer.echo(
        f"created project {project['id']} ({create_project!r}) on {label_studio}: "
        f"eglpp select … --label-studio {label_studio} --project {project['id']}"
    )


def label_studio_target(url: str | None, project: int | None) -> LabelStudio | None:
    """The server of ``--label-studio URL --project ID`` (None without them), checked: it
    answers, takes the token and has the project."""
    if url is None and project is None:
        return None
    if url is None or project is None:
        given, needed = ("--project", "--label-studio URL") if url is None else (
            "--label-studio", "--project ID")  # fmt: skip
        raise ValueError(f"{given}: needs {needed} too")
    client = connect(url)
    client.project(project)
    return client


def push_to_label_studio(client: LabelStudio, project: int, out: Path) -> None:
    """Make the selection's tasks in the project; ``OUT/label_studio.json`` says which."""
    report = push_selection(client, project, out, log=typer.echo)
    atomic_write_json(out / "label_studio.json", report)
    typer.echo(
        f"label studio: {report['created']} tasks made, {report['existing']} already there, "
        f"in project {project} on {client.url} (selection {report['selection_fingerprint']}; "
        f"{out}/label_studio.json)"
    )


def import_from_label_studio(
    client: LabelStudio, project: int, labelled: Path, selection: Path, out: Path, **merge
) -> dict:
    """``eglpp import --label-studio``: merge the selection's finished tasks; reports the
    open ones. The converted annotations are kept beside ``out`` (``*.label-studio.json``)."""
    export = out.with_name(out.stem + ".label-studio.json")
    report, pulled = import_label_studio(client, project, labelled, selection, out, export,
                                         **merge)  # fmt: skip
    states = {
        "open": "still open",
        "unchanged": "submitted with the prediction unchanged, so still open (correct them, "
        "or pass --accept-unchanged if they are right)",
        "cancelled": "skipped by the annotator",
    }
    for what, state in states.items():
        tasks = pulled[what]
        if tasks:
            shown = ", ".join(f"#{t['task']} {t['image']}" for t in tasks[:10])
            more = f", … ({len(tasks) - 10} more)" if len(tasks) > 10 else ""
            typer.echo(f"{len(tasks)} tasks {state}, not imported: {shown}{more}")
    return report
