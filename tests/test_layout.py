"""The layout rules of ../shared/DESIGN.md that a linter does not check, read from the source.

- No function body over ``MAX_BODY_LINES`` lines, counted from the line after the signature's
  closing ``:`` to the function's last line (docstring and comments included; a typer command's
  parameter list is part of its signature and does not count).
- No import inside a function of an eglpp module (not to dodge a cycle, not at all), and none of
  a third-party package except the optional or heavy ones in ``LAZY_IMPORTS``.
"""

import ast
import io
import tokenize
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "eglpp"
MAX_BODY_LINES = 60
#: Packages a function may import: optional dependencies (scikit-activeml's strategies, the
#: t-SNE map) and ``importlib`` for the statsmodels datasets loaded by name.
LAZY_IMPORTS = frozenset(
    {"skactiveml", "openTSNE", "importlib", "torch", "scipy"}
)  # heavy: `eglpp import` and --help start without them
#: (module, function) that import eglpp lazily on purpose, and why: the only exceptions.
LAZY_ON_PURPOSE = {
    ("console.py", "main"): "the thread policy's environment must be set before torch loads",
}


def _modules() -> list[tuple[Path, str, ast.Module]]:
    paths = sorted(SRC.rglob("*.py"))
    assert paths, f"no modules under {SRC}"
    return [(p, text, ast.parse(text, str(p))) for p in paths for text in [p.read_text()]]


def _functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _signature_end(lines: list[str], fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The line of the ``:`` that closes ``fn``'s signature (the first one outside brackets)."""
    text = "".join(lines[fn.lineno - 1 :])
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.OP:
            continue
        if tok.string in "([{":
            depth += 1
        elif tok.string in ")]}":
            depth -= 1
        elif tok.string == ":" and depth == 0:
            return fn.lineno + tok.start[0] - 1
    raise AssertionError(f"no end of the signature of {fn.name} (line {fn.lineno})")


def body_lines(source: str, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the one after the signature's end to the function's last line."""
    return fn.end_lineno - _signature_end(source.splitlines(keepends=True), fn)


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(SRC.parent)}:{node.lineno}"


def test_no_function_body_over_60_lines():
    too_long = [
        f"{_where(path, fn)} {fn.name}: {n} lines"
        for path, text, tree in _modules()
        for fn in _functions(tree)
        if (n := body_lines(text, fn)) > MAX_BODY_LINES
    ]
    assert not too_long, (
        f"function bodies over {MAX_BODY_LINES} lines (split them into named steps): "
        + "; ".join(too_long)
    )


def _literal_prefix(node: ast.expr) -> str:
    """The constant start of a string argument ("" when there is none)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _literal_prefix(node.values[0])
    return ""


def _imported(node: ast.AST) -> list[str]:
    """Top-level package names an import statement (or ``import_module("...")``) brings in;
    "eglpp" for a relative import."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return ["eglpp" if node.level else (node.module or "").split(".")[0]]
    if isinstance(node, ast.Call) and node.args:
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if name in ("import_module", "__import__"):
            prefix = _literal_prefix(node.args[0])
            return ["eglpp"] if prefix.startswith(("eglpp", ".")) else []
    return []


def test_no_imports_inside_functions_but_the_optional_packages():
    found = {}
    for path, _, tree in _modules():
        for fn in _functions(tree):
            for node in ast.walk(fn):
                for package in _imported(node):
                    if (path.name, fn.name) in LAZY_ON_PURPOSE and package == "eglpp":
                        continue
                    if package == "eglpp" or package not in LAZY_IMPORTS:
                        found[_where(path, node)] = f"{_where(path, node)} {fn.name}: {package}"
    assert not found, (
        "imports inside functions (import eglpp modules at the top; a third-party package "
        f"only if it is one of {sorted(LAZY_IMPORTS)}): " + "; ".join(found.values())
    )
