"""Experiment, strategies, datasets and CLI: end to end on small real data, and bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from eglpp.cli import app
from eglpp.cli.regression import write_tables
from eglpp.regression.batch import conditioned_batch
from eglpp.regression.datasets import dataset_names, load_csv, load_dataset
from eglpp.regression.ensembles import EnsembleConfig
from eglpp.regression.experiment import ExperimentConfig, gaussian_nll, run_experiment
from eglpp.regression.registry import make_strategy, strategy_names
from eglpp.stats import validate_results


def _csv(tmp_path, text: str):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


# --- bad input: each message names the problem -------------------------------------------


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv", "y")


def test_missing_target_column_is_named(tmp_path):
    path = _csv(tmp_path, "a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"target column 'price' not found.*\['a', 'b'\]"):
        load_csv(path, "price")


def test_non_numeric_cell_is_named(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,3\n4,five,6\n")
    with pytest.raises(ValueError, match=r"column 'b' has a non-numeric cell 'five' at data row 2"):
        load_csv(path, "y")


def test_nan_cell_is_named(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,3\n4,,6\n7,8,nan\n")
    with pytest.raises(ValueError, match=r"column 'b' has 1 empty, NaN or infinite"):
        load_csv(path, "y")


def test_too_few_rows_is_named(tmp_path):
    rows = "\n".join(f"{i},{i % 3},{2 * i}" for i in range(40))
    table = load_csv(_csv(tmp_path, "a,b,y\n" + rows + "\n"), "y")
    config = ExperimentConfig(initial=10, budget=5, cycles=10)
    with pytest.raises(ValueError, match=r"too few rows: 40 rows.*10 \+ 5 × 10 = 60"):
        run_experiment(table, config, None, progress=False)


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match=r"unknown strategy 'egll'.*egl, "):
        ExperimentConfig(strategies=("egl", "egll"))
    with pytest.raises(ValueError, match="unknown family 'svm'"):
        EnsembleConfig(family="svm")
    with pytest.raises(ValueError, match="unknown dataset 'boston'"):
        load_dataset("boston")


def test_cli_reports_bad_input_by_name(tmp_path):
    runner = CliRunner()
    path = _csv(tmp_path, "a,y\n1,2\n")
    res = runner.invoke(app, ["regression", "--data", str(path), "--target", "z"])
    assert res.exit_code != 0 and "target column 'z' not found" in str(res.exception)
    res = runner.invoke(app, ["regression", "--dataset", "diabetes", "--strategies", "egl,xyz"])
    assert res.exit_code != 0 and "unknown strategy 'xyz'" in str(res.exception)


# --- pieces ------------------------------------------------------------------------------


def test_builtin_datasets_load_offline():
    names = dataset_names()
    assert "diabetes" in names and len(names) >= 6
    for name in names:
        table = load_dataset(name)
        assert table.x.ndim == 2 and len(table) >= 200 and np.isfinite(table.x).all()


def test_gaussian_nll_matches_scipy():
    from scipy.stats import norm

    y, m, v = np.array([0.3, -1.0]), np.array([0.0, 0.5]), np.array([2.0, 0.25])
    assert gaussian_nll(y, m, v) == pytest.approx(-norm.logpdf(y, m, np.sqrt(v)).mean())


def test_conditioned_batch_spreads_over_correlated_items():
    """Two identical high-variance items: plain top-2 takes both, the conditioned batch takes
    one of them and then the best uncorrelated item."""
    rng = np.random.default_rng(0)
    K = 8
    common = rng.normal(size=K) * 3.0
    other = rng.normal(size=(K, 3))
    mean = np.column_stack([common, common, other])  # items 0 and 1 co-vary perfectly
    var = np.full_like(mean, 0.01)
    f = mean.mean(axis=0)
    grad_sq = np.ones(5)
    picks = conditioned_batch(grad_sq, mean, var, f, 2, np.random.default_rng(1))
    assert picks[0] in (0, 1) and picks[1] not in (0, 1)
    first = conditioned_batch(grad_sq, mean, var, f, 1, np.random.default_rng(1))
    assert first[0] == picks[0]


@pytest.mark.parametrize("name", strategy_names())
def test_every_strategy_selects_budget_distinct_items(name):
    table = load_dataset("diabetes")
    from eglpp.regression.ensembles import fit_ensemble
    from eglpp.regression.registry import PoolState

    x = (table.x - table.x.mean(0)) / table.x.std(0)
    ens = fit_ensemble(x[:30], table.y[:30], EnsembleConfig(n_members=4), seed=0)
    pool = x[30:130]
    state = PoolState(x[:30], table.y[:30], pool, ens.predict(pool), ens)
    picks = make_strategy(name).select(state, 5, np.random.default_rng(3))
    again = make_strategy(name).select(state, 5, np.random.default_rng(3))
    assert len(set(picks.tolist())) == 5 and picks.min() >= 0 and picks.max() < 100
    np.testing.assert_array_equal(picks, again)  # reproducible under a seed


# --- end to end --------------------------------------------------------------------------


def test_experiment_end_to_end_and_resume(tmp_path):
    table = load_dataset("diabetes")
    config = ExperimentConfig(
        strategies=("egl", "random", "egl-diverse"),
        ensemble=EnsembleConfig(n_members=4),
        runs=2,
        initial=12,
        budget=4,
        cycles=3,
        task="diabetes",
    )
    rmse, nll = run_experiment(table, config, tmp_path, progress=False)
    write_tables(tmp_path, rmse, nll)  # what `eglpp regression` writes next
    for name in ("results.json", "results_nll.json"):
        saved = json.loads((tmp_path / name).read_text())
        validate_results(saved)
        assert saved["n_labelled"] == [12, 16, 20, 24]
        assert set(saved["scores"]) == {"egl", "random", "egl-diverse"}
    for name in ("table.md", "table.csv", "learning_curves.png", "learning_curves_nll.png"):
        assert (tmp_path / name).stat().st_size > 0
    # every strategy starts from the same initial set: identical first point
    first = {s: [r[0] for r in v] for s, v in rmse["scores"].items()}
    assert first["egl"] == first["random"] == first["egl-diverse"]
    assert rmse["scores"]["egl"] != rmse["scores"]["random"]
    # a rerun reuses the saved runs and gives the same numbers; a fresh one recomputes them
    again, _ = run_experiment(table, config, tmp_path, progress=False)
    fresh, _ = run_experiment(table, config, None, progress=False)
    assert again["scores"] == rmse["scores"] == fresh["scores"]


def test_cli_on_a_user_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    y = x @ [1.0, -2.0] + rng.normal(size=80)
    lines = ["u,v,target"] + [f"{a},{b},{c}" for (a, b), c in zip(x, y, strict=True)]
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "regression",
            "--data",
            str(path),
            "--target",
            "target",
            "--runs",
            "2",
            "--initial",
            "8",
            "--budget",
            "3",
            "--cycles",
            "2",
            "--strategies",
            "egl,emcm,random",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "egl" in res.output and (out / "results.json").is_file()
    assert json.loads((out / "results.json").read_text())["config"]["data"]["target"] == "target"


def test_each_cycle_labels_the_rows_the_strategy_chose(monkeypatch):
    """The rows added to the labelled set are the unlabelled rows the strategy picked (its
    positions among the unlabelled, mapped back to the pool), never other rows."""
    import eglpp.regression.experiment as experiment

    seen = []

    class Recording:
        def __init__(self, name):
            self.inner = make_strategy(name)

        def select(self, state, budget, rng):
            query = self.inner.select(state, budget, rng)
            seen.append((state.x_labelled.copy(), state.x_unlabelled.copy(), np.asarray(query)))
            return query

    monkeypatch.setattr(experiment, "make_strategy", Recording)
    config = ExperimentConfig(strategies=("egl",), ensemble=EnsembleConfig(n_members=3), runs=1,
                              initial=10, budget=5, cycles=3)  # fmt: skip
    run_experiment(load_dataset("diabetes"), config, None, progress=False)

    def rows(a):
        return sorted(map(tuple, np.round(a, 12)))

    assert len(seen) == 3
    for (lab, unl, query), (lab_next, unl_next, _) in zip(seen, seen[1:], strict=False):
        assert rows(lab_next) == rows(np.concatenate([lab, unl[query]]))
        assert rows(unl_next) == rows(np.delete(unl, query, axis=0))


def test_a_folder_of_another_config_is_refused_more_runs_reuse(tmp_path):
    table = load_dataset("engel")
    config = ExperimentConfig(strategies=("egl", "random"), ensemble=EnsembleConfig(n_members=3),
                              runs=2, initial=8, budget=3, cycles=2)  # fmt: skip
    first, _ = run_experiment(table, config, tmp_path, progress=False)
    stamp = (tmp_path / "runs" / "run_001.json").stat().st_mtime_ns
    more, _ = run_experiment(table, replace(config, runs=3), tmp_path, progress=False)
    assert (tmp_path / "runs" / "run_001.json").stat().st_mtime_ns == stamp  # reused
    assert more["scores"]["egl"][:2] == first["scores"]["egl"]
    with pytest.raises(ValueError, match=r"holds results of another configuration \(results.json"
                       r" differs in: budget\); use another --out"):  # fmt: skip
        run_experiment(table, replace(config, budget=4), tmp_path, progress=False)
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        replace(config, max_rows=0)
    with pytest.raises(ValueError, match=r"data.csv: target column 'y' is constant \(2 in"):
        load_csv(_csv(tmp_path, "a,y\n1,2\n3,2\n5,2\n"), "y")
