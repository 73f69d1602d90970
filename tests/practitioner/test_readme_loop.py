"""The README's practitioner loop, run as written from a working directory where every path is
relative, with tiny sizes: demo data → train → select → simulated annotation → import →
retrain → select again.

The commands run in this process (``eglpp.cli.app``, as the ``eglpp`` executable runs them);
the sizes are the only change: each command gets the flags of ``TINY`` (a fraction of the
images, a one-stack network, one epoch), and every replaced value must be in the README, so a
change there that this test does not know fails here instead of passing unseen.
"""

import json
import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from eglpp.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/practitioner/test_readme_loop.py runs this block"

#: command -> (replacements old -> new, flags appended)
TINY = {
    "demo-data": ({}, ["--n-labelled", "16", "--n-pool", "24", "--size", "32"]),
    "train": (
        {"--epochs 18": "--epochs 1"},
        [
            "--stacks",
            "1",
            "--channels",
            "8",
            "--depth",
            "2",
            "--input-size",
            "32",
            "--val-fraction",
            "0",
            "--no-progress",
        ],
    ),  # fmt: skip
    "select": (
        {"--budget 20": "--budget 4"},
        ["--param", "k=4", "--param", "perplexity=2", "--chunk-size", "8", "--no-progress"],
    ),
    "demo-annotate": ({}, []),
    "import": ({}, []),
}


def readme_commands() -> list[str]:
    """The ``eglpp`` commands of the README block after MARKER, continuation lines joined and
    comments dropped."""
    text = README.read_text()
    assert MARKER in text, f"README.md lost its practitioner block ({MARKER} … -->)"
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARKER) :], re.S).group(1)
    joined = re.sub(r"\\\n\s*", "", block)
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line]


def tiny(command: str) -> list[str]:
    """``command``'s arguments after ``eglpp`` with the sizes of TINY."""
    words = shlex.split(command)
    assert words[0] == "eglpp", command
    replacements, extra = TINY[words[1]]
    for old, new in replacements.items():
        assert old in command, f"README: `{command}` no longer has {old!r}; update TINY"
        command = command.replace(old, new)
    return shlex.split(command)[1:] + extra


def test_the_readme_block_is_the_loop():
    names = [shlex.split(c)[1] for c in readme_commands()]
    assert names == ["demo-data", "train", "select", "demo-annotate", "import", "train", "select"]
    for command in readme_commands():  # every path relative: the block runs from any folder
        assert not any(w.startswith("/") for w in shlex.split(command)), command


def test_readme_practitioner_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # every path of the block is relative to the working directory
    outputs = []
    for command in readme_commands():  # in this process: the same commands, without 7 starts
        result = CliRunner().invoke(app, tiny(command))
        assert result.exit_code == 0, f"`{command}` failed:\n{result.output}\n{result.exception}"
        outputs.append(result.output)
    assert "mean-pose baseline" in outputs[1] and "model: " in outputs[1]
    selections = sorted(tmp_path.rglob("summary.json"))
    assert len(selections) == 2, selections
    first, second = (json.loads(p.read_text()) for p in selections)
    assert len(first["selected"]) == len(second["selected"]) == 4
    assert not set(first["selected"]) & set(second["selected"]), "selected again"
    assert second["n_labelled"] == first["n_labelled"] + 4
    assert "added 4 people" in outputs[4]
