"""The README's "Use your own model" example, run as written (at most 20 lines)."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- own-model example"


def test_readme_own_model_example_runs(capsys):
    text = README.read_text()
    assert MARKER in text, "README.md lost its own-model example"
    code = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.S).group(1)
    assert len(code.strip().splitlines()) <= 20
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    out, core = scope["out"], scope["core"]
    assert out.query_indices.shape == (10,) and len(set(out.query_indices.tolist())) == 10
    assert out.details["gradnorms"].shape == (200, 30)
    p, g = out.details["p"], out.details["gradnorms"]
    assert (p.sum(1) <= 1 + 1e-9).all() and (p.sum(1) > 0.5).all()  # Eq. 13: 30 of 40 neighbours
    np.testing.assert_allclose(out.scores, (p * g).sum(1), rtol=1e-12)  # Eq. 12
    assert out.scores[out.query_indices].min() >= np.delete(out.scores, out.query_indices).max()
    assert core.query_indices.shape == (10,)
    assert "(200, 30) (200, 30)" in capsys.readouterr().out
