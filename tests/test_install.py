"""What a user's install pulls in, and that CI runs the README's test command."""

import ast
import importlib.metadata
import re
import shlex
import sys
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
    backend = re.findall(r'"([\w-]+)', _extra("label-studio-backend"))
    assert backend == ["requests", "fastapi", "uvicorn", "httpx"]  # the ML backend's server
    assert not {"fastapi", "uvicorn"} & set(re.findall(r'"([\w-]+)', _extra("dependencies")))


def test_ci_installs_the_browser_extra_and_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert '-e ".[test,browser,label-studio,label-studio-backend]"' in ci
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    test_line = block.splitlines()[1].split("#")[0]  # the README's second command: the tests
    ci_line = [line for line in ci.splitlines() if "pytest" in line][-1]
    assert shlex.split(test_line) == shlex.split(ci_line), (test_line, ci_line)


def test_ci_installs_and_tests_in_a_fresh_virtual_environment():
    """.ci/run makes a new venv in a temporary folder and runs everything with its python (first
    on PATH): a package installed on the machine by hand cannot hide a missing dependency."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    code = [line for line in lines if line and not line.startswith("#")]
    assert 'VENV=$(mktemp -d /tmp/eglpp-ci-venv.XXXXXX)' in code
    made = code.index('python3 -m venv "$VENV"')
    on_path = next(i for i, line in enumerate(code) if line.startswith('export PATH="$VENV/bin:'))
    readme = (ROOT / "README.md").read_text()
    install = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).splitlines()[0]
    for command in ("pip install", "ruff", "lint-imports", "pytest"):
        uses = [i for i, line in enumerate(code) if command in line]
        assert uses and min(uses) > on_path > made, f".ci/run runs {command} outside its venv"
    for line in code:
        assert "python3 -m pip" not in line and not line.startswith("pip "), line
    # the README's install line, as CI runs it: torch, then the package with its extras
    assert "pip install torch==2.13.0 && pip install -e" in install
    assert "python -m pip install -q torch==2.13.0" in code


# --- every import is a declared dependency ------------------------------------------------

#: Import names whose distribution is named otherwise, for when it is not installed here
#: (installed ones are found by importlib.metadata.packages_distributions()).
ALIASES = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skactiveml": "scikit-activeml",
    "yaml": "pyyaml",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(block: str) -> set[str]:
    """The distribution names of a pyproject.toml list of requirement strings."""
    names = (re.match(r"[A-Za-z0-9][\w.-]*", r).group() for r in re.findall(r'"([^"]+)"', block))
    return {_norm(name) for name in names}


def _declared() -> dict[str, set[str]]:
    """``{"": core dependencies, extra: its dependencies}`` of pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = {e: _requirements(_extra(e)) for e in re.findall(r"^([\w-]+) = \[", section, re.M)}
    return {"": _requirements(_extra("dependencies")), **extras}


_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(t is None or getattr(t, "id", None) in _IMPORT_ERRORS for t in types):
            return True
    return False


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module, line, guarded) of each absolute import in ``path``; guarded: inside
    the body of a ``try`` that catches ImportError (the import of an optional extra)."""
    found = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((a.name.split(".")[0], node.lineno, guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.module.split(".")[0], node.lineno, guarded))
        for field, value in ast.iter_fields(node):
            inner = guarded or (
                isinstance(node, ast.Try) and field == "body" and _catches_import_error(node)
            )
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def _undeclared(folder: str, required: set[str], local: set[str]) -> list[str]:
    """Each import under ``folder`` of a third-party module that no requirement in ``required``
    (or, where guarded, in any extra) provides."""
    every = set().union(*_declared().values())
    provides = importlib.metadata.packages_distributions()
    missing = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module, line, guarded in _imports(path):
            if module in sys.stdlib_module_names or module in local:
                continue
            dists = {_norm(ALIASES.get(module, module))} | {
                _norm(d) for d in provides.get(module, [])
            }
            if not dists & (every if guarded else required):
                where, dist = f"{path.relative_to(ROOT)}:{line}", " or ".join(sorted(dists))
                extra = ", guarded, but in no extra either" if guarded else ""
                missing.append(f"{where} imports {module} (from {dist}{extra})")
    return missing


def test_every_import_of_the_library_is_a_core_dependency():
    """``pip install -e .`` alone gives a working library and every command: what src/ imports
    is in [project] dependencies (an import guarded by ``except ImportError``, in an extra)."""
    missing = _undeclared("src", _declared()[""], {"eglpp"})
    assert not missing, "not in pyproject.toml's [project] dependencies:\n" + "\n".join(missing)


def test_every_import_of_the_tests_is_a_core_or_test_dependency():
    """The README's first command (``pip install -e ".[test]"``) gives everything the tests
    import (a test of an optional extra guards its import with ``except ImportError``)."""
    local = {"eglpp"} | {p.stem for p in (ROOT / "tests").rglob("*.py")}
    missing = _undeclared("tests", _declared()[""] | _declared()["test"], local)
    message = "not in pyproject.toml's [project] dependencies or [test] extra:\n"
    assert not missing, message + "\n".join(missing)


#: The peers that benchmarks/egl_peers.py times when they are installed (looked up with
#: importlib.util.find_spec, never required): their own environment, see its docstring.
BENCHMARK_PEERS = {"backpack": "backpack-for-pytorch", "opacus": "opacus"}


def test_every_import_of_the_benchmarks_is_declared():
    """What the scripts under benchmarks/ import is declared: a core dependency or one of an
    extra (benchmarks/label_studio_loop.py takes its screenshot with [browser]'s Selenium),
    except the gradient-norm peers, which they look up first."""
    local = {"eglpp"} | {p.stem for p in (ROOT / "benchmarks").rglob("*.py")}
    peers = set(BENCHMARK_PEERS)
    missing = _undeclared("benchmarks", set().union(*_declared().values()), local | peers)
    message = "not in pyproject.toml's [project] dependencies or any extra:\n"
    assert not missing, message + "\n".join(missing)
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):
        for module in {m for m, _, _ in _imports(path)} & peers:
            assert f'find_spec("{module}")' in path.read_text(), f"{path.name} needs {module}"
