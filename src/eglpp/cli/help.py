"""How ``--help`` reads: plain text, switches without a type, examples as written.

The commands' docstrings are also the library's documentation, in reStructuredText; on the
terminal :func:`plain_help` shows ``code`` and :role:`target` as their text and joins the lines
of each paragraph (typer's rich mode keeps every line break of the source), but for indented
blocks (examples, continued with `` \\`` where long), which keep their lines.
:class:`Command` and :class:`Group` apply it, and show switches (``--progress/--no-progress``,
``--help``) without typer's ``<bool>`` type.

Only typer is imported: typer >= 0.29 carries its own copy of click and no longer depends on it,
so ``click`` may not be installed.
"""

from __future__ import annotations

import re

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["plain_help", "Command", "Group"]

_ROLE = re.compile(r":[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_CODE = re.compile(r"``([^`]+)``")


def _text(match: re.Match) -> str:
    return match.group(1).split(".")[-1] if "." in match.group(1) else match.group(1)


def plain_help(text: str | None) -> str | None:
    """``text`` without RST markup, each paragraph on one line but for indented blocks.

    >>> plain_help("Under ``torchrun\\n--nproc_per_node N`` see :func:`~eglpp.io.read_json`.")
    'Under torchrun --nproc_per_node N see read_json.'
    >>> print(plain_help("Example:\\n\\n    eglpp select --pool photos/ \\\\\\n        --out sel1"))
    Example:
    <BLANKLINE>
    eglpp select --pool photos/ \\
        --out sel1
    """
    if text is None:
        return None
    text = _CODE.sub(lambda m: m.group(1), _ROLE.sub(_text, text))
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        if all(line[0].isspace() for line in lines):  # a literal block (examples): as written
            indent = min(len(line) - len(line.lstrip()) for line in lines)
            paragraphs.append("\n".join(line[indent:].rstrip() for line in lines))
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def _switches_untyped(params: list) -> list:
    """``params`` (click parameters) with each switch's metavar blank."""
    for param in params:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""  # typer shows a switch's metavar in place of "<bool>"
    return params


class Command(TyperCommand):
    """A typer command with :func:`plain_help` and untyped switches."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.help = plain_help(self.help)

    def get_params(self, ctx: typer.Context) -> list:
        return _switches_untyped(super().get_params(ctx))


class Group(TyperGroup):
    """The typer group of ``eglpp`` with :func:`plain_help` and untyped switches."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.help = plain_help(self.help)

    def get_params(self, ctx: typer.Context) -> list:
        return _switches_untyped(super().get_params(ctx))
