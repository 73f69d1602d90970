"""``eglpp select --estimator probes``: EGL++ with random-sign probes (eglpp.gradnorm_approx)."""

import csv
import json
import shutil

import numpy as np
import pytest
import scipy.stats
from conftest import SIZE
from typer.testing import CliRunner

import eglpp.practitioner.select as select_module
from eglpp.cli import app
from eglpp.practitioner.commands import run_select
from eglpp.practitioner.select import SelectConfig

EXACT = SelectConfig(
    budget=5, strategy="egl++", hyperparameters=(("k", 4), ("perplexity", 2.0)),
    input_size=SIZE, chunk_size=16, batch_size=8,
)  # fmt: skip
PROBES = SelectConfig(**{**EXACT.__dict__, "estimator": "probes", "n_probes": 4})
CLI_EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2", "--chunk-size",
           "16", "--batch-size", "8", "--input-size", str(SIZE), "--no-progress"]  # fmt: skip


def _run(world, out, config):
    return run_select(world["checkpoint"], world["labelled"], world["pool"], out, config,
                      progress=False, log=lambda m: None)  # fmt: skip


def _cli(world, out, *extra):
    args = ["select", "--checkpoint", str(world["checkpoint"]), "--labelled",
            str(world["labelled"]), "--pool", str(world["pool"]), "--budget", "5", "--out",
            str(out), *CLI_EGL, *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


def _scores(out) -> dict[str, float]:
    with open(out / "scores.csv") as f:
        return {row["image"]: float(row["score"]) for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    """Output folders of an exact and a probes (R = 4, seed 0, from the CLI) selection."""
    root = tmp_path_factory.mktemp("estimator")
    _run(world, root / "exact", EXACT)
    result = _cli(world, root / "probes", "--estimator", "probes", "--probes", "4")
    assert result.exit_code == 0, (result.output, result.exception)
    return {"exact": root / "exact", "probes": root / "probes"}


def test_probe_scores_agree_with_exact_ones(world, runs, tmp_path):
    exact, probes = _scores(runs["exact"]), _scores(runs["probes"])
    names = sorted(exact)
    e, p = np.array([exact[n] for n in names]), np.array([probes[n] for n in names])
    # measured on this fixture: Spearman 0.9996-0.9998 over 5 seeds at R = 4 (0.999 at R = 1)
    assert scipy.stats.spearmanr(e, p).statistic > 0.99
    first = json.loads((runs["exact"] / "summary.json").read_text())["selected"]
    second = json.loads((runs["probes"] / "summary.json").read_text())["selected"]
    assert len(set(first) & set(second)) >= 4
    error4 = np.abs(p / e - 1).mean()
    assert error4 > 0  # an estimate, not the exact score
    # unbiased: 16 times the probes, a quarter of the error (measured ratio 0.22-0.32)
    _run(world, tmp_path, SelectConfig(**{**PROBES.__dict__, "n_probes": 64}))
    many = _scores(tmp_path)
    error64 = np.abs(np.array([many[n] for n in names]) / e - 1).mean()
    assert error64 < 0.6 * error4


def test_probes_are_reproducible_and_resumable(world, runs, tmp_path, monkeypatch):
    summary = json.loads((runs["probes"] / "summary.json").read_text())
    assert summary["estimator"] == "probes --probes 4" and summary["config"]["n_probes"] == 4
    real, calls = select_module._chunk, []

    def dies_on_the_second(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(select_module, "_chunk", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        _run(world, tmp_path / "cut", PROBES)
    monkeypatch.setattr(select_module, "_chunk", real)
    resumed = _run(world, tmp_path / "cut", PROBES)  # chunks 1 and 2 computed afresh
    assert resumed["chunks_reused"] == 1 and resumed["chunks_computed"] == 2
    assert (tmp_path / "cut" / "scores.csv").read_text() == (
        runs["probes"] / "scores.csv"
    ).read_text()
    assert resumed["selected"] == summary["selected"]
    other = _run(world, tmp_path / "seed1", SelectConfig(**{**PROBES.__dict__, "seed": 1}))
    assert other["fingerprint"] != resumed["fingerprint"]
    assert _scores(tmp_path / "seed1") != _scores(runs["probes"])  # other seed, other probes


def test_another_estimator_in_the_same_folder_is_refused(world, runs, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"--estimator probes --probes 4: .*exact holds a selection scored with "
        r"--estimator exact \(recorded in .*select_config.json\).*another --out",
    ):
        _run(world, runs["exact"], PROBES)
    with pytest.raises(
        ValueError, match=r"--probes 2: .*scored with --estimator probes --probes 4"
    ):
        _run(world, runs["probes"], SelectConfig(**{**PROBES.__dict__, "n_probes": 2}))
    legacy = tmp_path / "legacy"  # a folder finished before the option: summary.json only
    legacy.mkdir()
    summary = json.loads((runs["exact"] / "summary.json").read_text())
    del summary["config"]["estimator"], summary["config"]["n_probes"]
    (legacy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match=r"scored with --estimator exact \(recorded in .*summary"):
        _run(world, legacy, PROBES)
    same = shutil.copytree(runs["exact"], tmp_path / "same")  # same estimator: goes on
    assert _run(world, same, SelectConfig(**{**EXACT.__dict__, "budget": 3}))["chunks_reused"] == 3


def test_bad_estimator_settings_name_the_option(world, tmp_path):
    with pytest.raises(ValueError, match=r"--estimator 'fast' \(expected exact or probes\)"):
        SelectConfig(budget=1, estimator="fast")
    with pytest.raises(ValueError, match=r"--probes 0 \(expected an integer >= 1\)"):
        SelectConfig(budget=1, estimator="probes", n_probes=0)
    cases = {
        ("--estimator", "fast"): "--estimator 'fast' (expected exact or probes)",
        ("--estimator", "probes", "--probes", "0"): "--probes 0 (expected an integer >= 1)",
        ("--probes", "3"): "--probes 3: applies to --estimator probes only",
        ("--strategy", "random", "--estimator", "probes"): "--estimator probes: strategy "
        "'random' computes no gradient norms",
        ("--param", "estimator=probes"): "--param estimator=probes: give it as --estimator",
    }
    for flags, message in cases.items():
        result = _cli(world, tmp_path / "out", *flags)
        assert isinstance(result.exception, ValueError), (flags, result.output)
        assert message in str(result.exception), (flags, str(result.exception))
    assert not (tmp_path / "out").exists()  # refused before anything was written
