"""What a user's install pulls in, and that CI runs the README's test command."""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _extra(name: str) -> str:
    """An optional-dependency list of pyproject.toml, as text (no tomllib on Python 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(rf"^{name} = \[(.*?)^\]", text, re.S | re.M).group(1)


def test_selenium_only_in_the_browser_extra():
    assert "selenium" not in _extra("test"), "[test] pulls Selenium into a user's install"
    assert '"selenium' in _extra("browser")


def test_the_label_studio_server_is_no_dependency():
    """``eglpp[label-studio]`` is an HTTP client; the server (``label-studio`` from PyPI, with
    its own pins) lives in its own virtual environment (.ci/label_studio.sh), never in ours."""
    text = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'"label[-_]studio', text, re.I), "the server became a dependency"
    assert re.findall(r'"([\w-]+)', _extra("label-studio")) == ["requests"]


def test_ci_installs_the_browser_extra_and_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-e ".[test,browser,label-studio]"' in ci
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    test_line = block.splitlines()[1].split("#")[0]  # the README's second command: the tests
    ci_line = [line for line in ci.splitlines() if "pytest" in line][-1]
    readme_args, ci_args = shlex.split(test_line), shlex.split(ci_line)
    assert readme_args[0] == "python" and ci_args[0] == "python3"
    assert readme_args[1:] == ci_args[1:], (test_line, ci_line)
