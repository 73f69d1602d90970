"""``eglpp demo-data``: the practitioner's loop without own data.

``demo-data`` writes rendered people as a user's files would be (a COCO labelled set, a pool
folder of JPEGs) plus the pool's truth; ``demo-annotate`` (:mod:`eglpp.cli.demo_annotate`)
plays the annotator for a selection. See :mod:`eglpp.practitioner.demo`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from eglpp.practitioner.demo import write_demo_data

__all__ = ["demo_data"]


def demo_data(
    out: Path = typer.Argument(..., help="Folder to write (created)."),
    n_labelled: int = typer.Option(1000, help="Labelled people (labelled.json)."),
    n_pool: int = typer.Option(400, help="Unlabelled pool images (pool/)."),
    size: int = typer.Option(64, help="Image side in px."),
    seed: int = typer.Option(0, help="Same seed, same images."),
    skeleton: str = typer.Option(
        "lsp", help="lsp (14 joints) | coco17 (COCO's 17 keypoints: face points on the head)."
    ),
) -> None:
    """Write demo data for eglpp select: rendered people as JPEGs, a COCO keypoints labelled
    set and a pool folder.

    Writes OUT/labelled.json (+ OUT/labelled_images/), OUT/pool/ and OUT/pool_truth.json (the
    pool's true keypoints: eglpp demo-annotate answers a selection with them).

    Example:

        eglpp demo-data demo            (or --skeleton coco17)
        eglpp train demo/labelled.json --epochs 40 --out demo/model
    """
    done = write_demo_data(
        out, n_labelled=n_labelled, n_pool=n_pool, size=size, seed=seed, skeleton=skeleton
    )
    typer.echo(
        f"wrote {done['n_labelled']} labelled people ({done['labelled']}), a pool of "
        f"{done['n_pool']} images ({done['pool']}/) and the pool's truth ({done['truth']}); "
        f"{done['size']} px, {done['skeleton']} keypoints"
    )
    typer.echo(f"next: eglpp train {done['labelled']} --out {Path(out) / 'model'}")
