"""Run directories for the report tests: a real micro pose run and a regression-like folder."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from report_helpers import fabricated_results

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import run_experiment
from eglpp.report.explain import explain_selection


@pytest.fixture(scope="session")
def pose_run(tmp_path_factory, micro_config) -> Path:
    """A finished micro pose run directory (results.json, metrics.json, explain PNGs): random
    and EGL++, two runs. Its micro models score near 0 % PCK: whether the strategies differ, and
    so whether Table 1 has p-values, is left to chance; :func:`differing_run` has them."""
    out = tmp_path_factory.mktemp("pose_run")
    micro = micro_config(strategies=["random", "egl++"], runs=2)
    run_experiment(
        config_from_dict(micro, base=preset("tiny")),
        out,
        log=lambda _m: None,
        explain=explain_selection,
    )
    return out


#: What :func:`differing_run` adds to random's PCK for EGL++: (run, number labelled); none at
#: the shared base model, and differences that vary between the runs at each number labelled
#: and in the area under the curve (a t-test needs that; trapezoids 0.025 + 0.075 vs 0.01 + 0.08).
GAINS = [[0.0, 0.05, 0.10], [0.0, 0.02, 0.14]]


@pytest.fixture
def differing_run(pose_run, tmp_path) -> Path:
    """A copy of :func:`pose_run` whose results.json gives EGL++ random's PCK plus
    :data:`GAINS`: the strategies differ by construction, so every p-value after the base
    model is defined, whatever the micro models scored on this machine."""
    out = tmp_path / "differing_run"
    shutil.copytree(pose_run, out)
    results = json.loads((out / "results.json").read_text())
    random = np.array(results["scores"]["random"])
    results["scores"]["egl++"] = (random + np.array(GAINS)).tolist()
    (out / "results.json").write_text(json.dumps(results))
    return out


@pytest.fixture
def regression_run(tmp_path) -> Path:
    """A folder as `eglpp regression --out` leaves it: results.json and results_nll.json."""
    (tmp_path / "results.json").write_text(json.dumps(fabricated_results("RMSE", 1)))
    (tmp_path / "results_nll.json").write_text(json.dumps(fabricated_results("Gaussian NLL", 2)))
    return tmp_path
