"""The command line: ``eglpp <command>``.

This is the only module that reads flags or YAML; it builds frozen configs and passes them to
the library. Each command lives beside the code it drives (``eglpp.<area>.commands``) and is
registered here.
"""

from __future__ import annotations

import typer

from eglpp import __version__

app = typer.Typer(
    name="eglpp",
    help="Active learning with Expected Gradient Length: regression (EGL) and pose (EGL++).\n\n"
    "Example: eglpp run --preset tiny --out runs/tiny && eglpp report runs/tiny",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


# --- command registration: one line per command, each importing from its own area ---
# (keep this block in this form; each area adds its own line)
from eglpp.pose.commands import train as _pose_train  # noqa: E402

app.command("train")(_pose_train)
from eglpp.pose.run_cli import run  # noqa: E402

app.command("run")(run)
from eglpp.regression.commands import regression  # noqa: E402

app.command("regression")(regression)
from eglpp.report.commands import report  # noqa: E402

app.command("report")(report)
from eglpp.practitioner.commands import import_annotations, select  # noqa: E402

app.command("select")(select)
app.command("import")(import_annotations)
# --- end of command registration ---


def main() -> None:
    """Run the CLI; bad input ends with a one-line error naming what is wrong (exit code 2)."""
    import sys

    from eglpp.io import StateFileError

    try:
        app()
    except (ValueError, FileNotFoundError, StateFileError, KeyError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
