"""The command line: ``eglpp <command>``.

This package is the only place that reads flags or YAML; it builds the frozen settings objects
and passes them to the library. One module per command (:data:`COMMANDS`), imported only when
its command runs or shows its help: ``eglpp --help``, ``--version`` and the file commands
(``import``, ``demo-annotate``, ``label-studio-config``) start without torch or scikit-learn,
which the others load (after :mod:`eglpp.console` has set the thread policy).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import typer
from typer.core import TyperCommand
from typer.main import get_command_from_info
from typer.models import CommandInfo

from eglpp import __version__
from eglpp.cli.help import Command, Group, plain_help

__all__ = ["app", "main", "COMMANDS", "LazyGroup", "load_command", "summary"]

#: command -> (module, function). ``eglpp --help`` lists the first paragraph of each function's
#: docstring, read from the module's source without importing it (:func:`summary`).
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("eglpp.cli.train", "train"),
    "evaluate": ("eglpp.cli.evaluate", "evaluate_model"),
    "run": ("eglpp.cli.run", "run"),
    "regression": ("eglpp.cli.regression", "regression"),
    "report": ("eglpp.cli.report", "report"),
    "select": ("eglpp.cli.select", "select"),
    "import": ("eglpp.cli.annotations", "import_annotations"),
    "label-studio-config": ("eglpp.cli.label_studio", "label_studio_config"),
    "label-studio-backend": ("eglpp.cli.label_studio_backend", "label_studio_backend"),
    "demo-data": ("eglpp.cli.demo", "demo_data"),
    "demo-annotate": ("eglpp.cli.demo_annotate", "demo_annotate"),
}


def summary(name: str) -> str:
    """The first paragraph of command ``name``'s docstring (:func:`plain_help`), from the
    source of its module: listing the commands imports none of them."""
    module, function = COMMANDS[name]
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return (plain_help(ast.get_docstring(node)) or "").split("\n\n")[0]
    raise LookupError(f"{module} has no function {function}")


class _Commands(dict):
    """Every command's name (typer suggests among them for a typo); a command itself is
    loaded on first access."""

    def __init__(self, load) -> None:
        super().__init__(dict.fromkeys(COMMANDS))
        self._load = load

    def loaded(self, name: str) -> bool:
        return super().get(name) is not None

    def __getitem__(self, name: str) -> TyperCommand:
        if not self.loaded(name):
            super().__setitem__(name, self._load(name))
        return super().__getitem__(name)

    def get(self, name: str, default=None):
        return self[name] if name in self else default


class LazyGroup(Group):
    """The ``eglpp`` group: each command's module is imported when the command is resolved
    (to run, or to show its own help); the group's help lists :data:`COMMANDS`' summaries."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False
        self._stand_ins: dict[str, TyperCommand] = {}  # name and summary, for the list
        self.commands = _Commands(lambda name: load_command(name, self.rich_markup_mode))

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, name: str) -> TyperCommand | None:
        if name not in COMMANDS:
            return None
        if self._listing and not self.commands.loaded(name):
            if name not in self._stand_ins:
                text = summary(name)
                self._stand_ins[name] = TyperCommand(name, help=text, short_help=text)
            return self._stand_ins[name]
        return self.commands[name]

    def format_help(self, ctx: typer.Context, formatter) -> None:
        self._listing = True  # the list of commands needs their summaries only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def load_command(name: str, rich_markup_mode=typer.core.DEFAULT_MARKUP_MODE) -> TyperCommand:
    """The click command of ``eglpp NAME``, its module imported now."""
    module, function = COMMANDS[name]
    callback = getattr(importlib.import_module(module), function)
    info = CommandInfo(name=name, callback=callback, cls=Command)
    return get_command_from_info(
        info, pretty_exceptions_short=True, rich_markup_mode=rich_markup_mode
    )


app = typer.Typer(
    name="eglpp",
    help="Active learning with Expected Gradient Length: regression (EGL) and pose (EGL++).\n\n"
    "Example: eglpp run --preset tiny --out runs/tiny && eglpp report runs/tiny",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
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


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that are the user's input, not a bug: a one-line error each. eglpp's own
    are looked up only where their module was loaded (else none of them can have been raised)."""
    errors: list[type[BaseException]] = [ValueError, FileNotFoundError, KeyError]
    for module, name in (("eglpp.io", "StateFileError"),
                         ("eglpp.pose.datasets.base", "ImageError")):  # fmt: skip
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def input_size_pairs(args: list[str]) -> list[str]:
    """``--input-size H W`` (two numbers) as ``--input-size HxW``, the one value click reads.

    >>> input_size_pairs(["select", "--input-size", "256", "192", "--budget", "5"])
    ['select', '--input-size', '256x192', '--budget', '5']
    """
    out, i = [], 0
    while i < len(args):
        pair = args[i + 1 : i + 3]
        if args[i] == "--input-size" and len(pair) == 2 and all(a.isdigit() for a in pair):
            out += [args[i], "x".join(pair)]
            i += 3
            continue
        out.append(args[i])
        i += 1
    return out


def main() -> None:
    """Run the CLI; bad input ends with a one-line error naming what is wrong (exit code 2)."""
    sys.argv[1:] = input_size_pairs(sys.argv[1:])
    try:
        app()
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            typer.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        if not isinstance(exc, OSError) or exc.filename is None:
            raise
        # a path that cannot be written or read (permissions, a full disk)
        typer.secho(f"error: {exc.filename}: {exc.strerror or exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
