"""Run directories for the report tests: a real micro pose run and a regression-like folder."""

import json
from pathlib import Path

import pytest
from report_helpers import fabricated_results

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import run_experiment
from eglpp.report.explain import explain_selection

#: A pose experiment small enough for a few seconds: 2 runs (so p-values exist) × 2 cycles.
MICRO = {
    "strategies": ["random", "egl++"],
    "runs": 2,
    "cycles": 2,
    "budget": 6,
    "initial": 12,
    "n_pool": 40,
    "n_test": 12,
    "input_size": 32,
    "model": {"n_stacks": 1, "channels": 8, "depth": 2},
    "base_train": {"epochs": 2, "batch_size": 8},
    "cycle_train": {"epochs": 1, "batch_size": 8},
    "strategy": {"k": 4, "perplexity": 2.0},
}


@pytest.fixture(scope="session")
def pose_run(tmp_path_factory) -> Path:
    """A finished micro pose run directory (results.json, metrics.json, explain PNGs)."""
    out = tmp_path_factory.mktemp("pose_run")
    run_experiment(
        config_from_dict(MICRO, base=preset("tiny")),
        out,
        log=lambda _m: None,
        explain=explain_selection,
    )
    return out


@pytest.fixture
def regression_run(tmp_path) -> Path:
    """A folder as `eglpp regression --out` leaves it: results.json and results_nll.json."""
    (tmp_path / "results.json").write_text(json.dumps(fabricated_results("RMSE", 1)))
    (tmp_path / "results_nll.json").write_text(json.dumps(fabricated_results("Gaussian NLL", 2)))
    return tmp_path
