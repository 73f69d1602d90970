"""The probe estimator of EGL++ runs in the loop (the loop under torchrun's ranks:
tests/loop/test_ranks.py)."""

import numpy as np
import pytest

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import run_experiment


@pytest.fixture(scope="module")
def micro(micro_config) -> dict:
    """The micro experiment with EGL++ alone, budget 5 and batch size 8."""
    return micro_config(strategies=["egl++"], budget=5, batch_size=8)


def _quiet(_msg: str) -> None:
    pass


APPROX = {"estimator": "approx", "n_exact": 1, "n_probes": 0, "approx_check": 10}


def test_loop_runs_with_the_approximate_estimator(tmp_path, micro):
    cfg = config_from_dict(
        {
            **micro,
            "cycles": 1,
            "strategy": {
                **micro["strategy"],
                **APPROX,
                "n_probes": 2,
                "n_exact": 4,  # = K: the approximation is exact, and so must the check find it
            },
        },
        base=preset("tiny"),
    )
    results = run_experiment(cfg, tmp_path, log=_quiet)
    assert len(results["scores"]["egl++"][0]) == 2
    with np.load(tmp_path / "run-00" / "egl++" / "cycle-01" / "selection.npz") as z:
        scores, query = z["scores"], z["query_indices"]
        assert "detail_gradnorms" not in z.files  # the estimator gives one value per image
        rows, exact = z["detail_approx_check_rows"], z["detail_approx_check_exact"]
        np.testing.assert_allclose(z["scores"][rows], exact, rtol=1e-5)
        assert float(z["detail_approx_check_spearman"]) == pytest.approx(1.0)
    assert scores.shape == (28,) and np.isfinite(scores).all() and (scores > 0).all()
    assert len(set(query.tolist())) == 5


def test_bad_estimator_is_named():
    with pytest.raises(ValueError, match="estimator"):
        config_from_dict({"strategy": {"estimator": "guess"}}, base=preset("tiny"))
