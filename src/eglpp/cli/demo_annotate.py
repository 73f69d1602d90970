"""``eglpp demo-annotate``: play the annotator for the demo's selection (a file command: no
torch). See :mod:`eglpp.practitioner.demo_annotate`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from eglpp.io import check_new_file
from eglpp.practitioner.demo_annotate import simulate_annotation

__all__ = ["demo_annotate"]


def demo_annotate(
    selection: Path = typer.Argument(
        ..., help="What to annotate: eglpp select's output folder or its selection_coco.json."
    ),
    truth: Path = typer.Option(..., help="The pool's truth that eglpp demo-data wrote."),
    out: Path = typer.Option(..., help="The COCO keypoints export to write."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a file already at --out (refused by default)."
    ),
) -> None:
    """Play the annotator for demo data: answer a selection with the pool's true keypoints, as
    an annotation tool's COCO export would.

    Example:

        eglpp demo-annotate demo/sel1 --truth demo/pool_truth.json \\
            --out demo/export.json
    """
    check_new_file(out, overwrite=overwrite, inputs={"--truth": truth})
    done = simulate_annotation(selection, truth, out)
    typer.echo(f"annotated {done['images']} images (simulated); wrote {done['out']}")
