"""The README's preset table says what PRESETS holds (sizes, runs, cycles, neighbours)."""

import re
from pathlib import Path

import pytest

from eglpp.experiment.config import PRESETS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_readme_row_matches_the_preset(name):
    rows = [line for line in README.splitlines() if line.startswith(f"| `{name}`")]
    assert len(rows) == 1, f"README has no single preset row for {name}"
    row, cfg = rows[0], PRESETS[name]
    m = cfg.model
    expected = [f"{cfg.input_size}-px", f"{m.n_stacks}-stack {m.channels}-channel",
                f"{cfg.runs} runs", f"{cfg.cycles} cycles × {cfg.budget}"]  # fmt: skip
    if name != "tiny":
        egl = cfg.strategy.get("egl++")
        expected += [f"K = {egl.k}", f"perplexity {egl.perplexity:g}"]
    if cfg.n_base:
        expected.append(f"base set of {cfg.n_base}")
    for text in expected:
        assert text in row, f"README's {name} row lacks {text!r}: {row}"
    if name == "quick":
        assert re.search(rf"pool {cfg.n_pool} \({cfg.n_pool - cfg.initial} to choose from\)", row)
