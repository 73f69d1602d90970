"""``eglpp run`` under torchrun (2 CPU processes) selects what one process selects; the probe
estimator runs in the loop."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_distributed import _torchrun

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import run_experiment


@pytest.fixture(scope="module")
def micro(micro_config) -> dict:
    """The micro experiment with EGL++ alone, budget 5 and batch size 8: the 28 unlabelled
    images of a cycle shard into 16 and 12 rows."""
    return micro_config(strategies=["egl++"], budget=5, batch_size=8)


def _quiet(_msg: str) -> None:
    pass


def _selections(out: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for path in sorted(out.glob("run-*/*/cycle-*/selection.npz")):
        with np.load(path) as z:
            found[str(path.relative_to(out))] = {k: z[k] for k in ("query_indices", "scores")}
    return found


APPROX = {"estimator": "approx", "n_exact": 1, "n_probes": 0, "approx_check": 10}


@pytest.mark.parametrize("strategy", [{}, APPROX], ids=["exact", "approx-checked"])
def test_torchrun_two_processes_select_like_one(tmp_path, micro, strategy):
    settings = {**micro, "strategy": {**micro["strategy"], **strategy}}
    config = tmp_path / "micro.yaml"
    config.write_text(yaml.safe_dump(settings))
    sharded = tmp_path / "sharded"
    proc = _torchrun(
        2,
        "-m",
        "eglpp.cli",
        "run",
        "--preset",
        "tiny",
        "--config",
        str(config),
        "--out",
        str(sharded),
    )
    assert proc.stdout.count("eglpp run") == 1  # only rank 0 prints
    single = tmp_path / "single"
    results = run_experiment(config_from_dict(settings, base=preset("tiny")), single, log=_quiet)
    found, expected = _selections(sharded), _selections(single)
    assert sorted(found) == sorted(expected) and len(found) == 2
    for name, sel in expected.items():
        assert found[name]["query_indices"].tolist() == sel["query_indices"].tolist()
        np.testing.assert_allclose(found[name]["scores"], sel["scores"], rtol=1e-6)
    assert json.loads((sharded / "results.json").read_text())["scores"] == results["scores"]
    assert not list(sharded.glob("**/*.tmp")) and (sharded / "table.md").exists()
    if strategy:  # the exact scores of the check's sample, sharded, equal one process's
        for name in expected:
            with np.load(sharded / name) as a, np.load(single / name) as b:
                np.testing.assert_allclose(
                    a["detail_approx_check_exact"], b["detail_approx_check_exact"], rtol=1e-6
                )
                assert (
                    a["detail_approx_check_rows"].tolist() == b["detail_approx_check_rows"].tolist()
                )
                assert -1 <= float(a["detail_approx_check_spearman"]) <= 1


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
