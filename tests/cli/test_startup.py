"""Issue 21 (also): `eglpp --help`, `--version` and the file commands start without torch or
scikit-learn (they took 7-8 s on two cores importing them); the commands that need torch still
get the thread policy before it loads."""

import json
import subprocess
import sys

import pytest

from eglpp.cli import COMMANDS, load_command, summary
from eglpp.cli.help import plain_help

HEAVY = ("torch", "sklearn", "skactiveml", "matplotlib", "scipy")

PROBE = """
import json, os, sys
sys.argv = ["eglpp", *json.loads(sys.argv[1])]
from eglpp.console import main
try:
    main()
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("LOADED", json.dumps({{"heavy": heavy, "omp": os.environ.get("OMP_WAIT_POLICY")}}))
"""


def _loaded(args):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OMP_")}
    res = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(args)],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    line = [x for x in res.stdout.splitlines() if x.startswith("LOADED ")]
    assert line, res.stdout + res.stderr
    return json.loads(line[-1].removeprefix("LOADED "))


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["import", "--help"], ["demo-annotate", "--help"],
     ["label-studio-config", "--help"], ["label-studio-config"]],
)  # fmt: skip
def test_help_version_and_file_commands_load_no_heavy_library(args):
    assert _loaded(args)["heavy"] == []


def test_a_torch_command_loads_torch_after_the_thread_policy():
    got = _loaded(["train", "--help"])
    assert "torch" in got["heavy"] and got["omp"] == "PASSIVE"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_summary_is_the_commands_own_first_paragraph(name):
    command = load_command(name)
    assert summary(name) == plain_help(command.help).split("\n\n")[0]
