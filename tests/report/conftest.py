"""Run directories for the report tests: a real micro pose run and a regression-like folder."""

import json
from pathlib import Path

import pytest
from report_helpers import fabricated_results

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import run_experiment
from eglpp.report.explain import explain_selection


@pytest.fixture(scope="session")
def pose_run(tmp_path_factory, micro_config) -> Path:
    """A finished micro pose run directory (results.json, metrics.json, explain PNGs): random
    and EGL++, two runs so that p-values exist."""
    out = tmp_path_factory.mktemp("pose_run")
    # per-strategy training noise: the micro models score near 0 % PCK, and under common random
    # numbers both strategies can tie in every run, leaving the p-values undefined
    micro = micro_config(strategies=["random", "egl++"], runs=2, common_random_numbers=False)
    run_experiment(
        config_from_dict(micro, base=preset("tiny")),
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
