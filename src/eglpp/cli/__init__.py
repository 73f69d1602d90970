"""The command line: ``eglpp <command>``.

This package is the only place that reads flags or YAML; it builds the frozen settings objects
and passes them to the library. One module per command:

- ``train``: :mod:`eglpp.cli.train`;  ``run``: :mod:`eglpp.cli.run`;
- ``regression``: :mod:`eglpp.cli.regression`;  ``report``: :mod:`eglpp.cli.report`;
- ``select`` and ``import``: :mod:`eglpp.cli.select`;
- ``label-studio-config`` (and ``--label-studio`` of select/import): :mod:`eglpp.cli.label_studio`;
- ``demo-data`` and ``demo-annotate``: :mod:`eglpp.cli.demo`.
"""

from __future__ import annotations

import sys

import typer

from eglpp import __version__
from eglpp.cli.demo import demo_annotate, demo_data
from eglpp.cli.help import Command, Group
from eglpp.cli.label_studio import label_studio_config
from eglpp.cli.regression import regression
from eglpp.cli.report import report
from eglpp.cli.run import run
from eglpp.cli.select import import_annotations, select
from eglpp.cli.train import train
from eglpp.io import StateFileError
from eglpp.pose.datasets.base import ImageError

__all__ = ["app", "main"]

app = typer.Typer(
    name="eglpp",
    help="Active learning with Expected Gradient Length: regression (EGL) and pose (EGL++).\n\n"
    "Example: eglpp run --preset tiny --out runs/tiny && eglpp report runs/tiny",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"eglpp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Active learning with Expected Gradient Length."""


app.command("train", cls=Command)(train)
app.command("run", cls=Command)(run)
app.command("regression", cls=Command)(regression)
app.command("report", cls=Command)(report)
app.command("select", cls=Command)(select)
app.command("import", cls=Command)(import_annotations)
app.command("label-studio-config", cls=Command)(label_studio_config)
app.command("demo-data", cls=Command)(demo_data)
app.command("demo-annotate", cls=Command)(demo_annotate)


def main() -> None:
    """Run the CLI; bad input ends with a one-line error naming what is wrong (exit code 2)."""
    try:
        app()
    except (ValueError, FileNotFoundError, ImageError, StateFileError, KeyError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    except OSError as exc:  # a path that cannot be written or read (permissions, a full disk)
        if exc.filename is None:
            raise
        typer.secho(f"error: {exc.filename}: {exc.strerror or exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
