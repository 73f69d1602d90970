"""The README's scikit-activeml section: its code is the example file, and it runs."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import matplotlib
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- tests/regression/test_skactiveml_readme.py runs this block"


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    after = text[text.index(MARKER) :]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


def test_readme_block_is_the_example_file():
    assert _readme_block() == (ROOT / "examples" / "skactiveml_egl_vs_emc.py").read_text()


def test_readme_block_runs(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    script = tmp_path / "readme_block.py"
    script.write_text(_readme_block())
    out = runpy.run_path(str(script), run_name="__main__")
    curves = out["curves"]
    assert set(curves) == {"EMC", "EGL"}
    for runs in curves.values():
        runs = np.asarray(runs)
        assert runs.shape == (5, 11) and np.isfinite(runs).all()
        assert (runs[:, -1] < runs[:, 0]).all()  # 50 more labels help every split
    assert (tmp_path / "skactiveml_egl_vs_emc.png").stat().st_size > 10_000
    plt.close("all")
