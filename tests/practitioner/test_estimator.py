"""``eglpp select --estimator approx``: EGL++'s cheaper gradient term (eglpp.gradnorm.approx)."""

import csv
import json
import shutil

import numpy as np
import pytest
import scipy.stats
from conftest import SIZE, flat, select_config
from typer.testing import CliRunner

import eglpp.practitioner.select as select_module
from eglpp.cli import app
from eglpp.practitioner.run import run_select

EXACT = select_config(
    budget=5, strategy="egl++", hyperparameters=(("k", 4), ("perplexity", 2.0)),
    input_size=SIZE, chunk_size=16, batch_size=8,
)  # fmt: skip
# one neighbour exactly, the other three by their mean cotangent and 2 probes of their spread
PROBES = select_config(**{**flat(EXACT), "estimator": "approx", "n_exact": 1, "n_probes": 2})
CLI_EGL = ["--strategy", "egl++", "--param", "k=4", "--param", "perplexity=2", "--chunk-size",
           "16", "--batch-size", "8", "--input-size", str(SIZE), "--no-progress"]  # fmt: skip


def _with(config, **changes):
    return select_config(**{**flat(config), **changes})


def _run(world, out, config):
    return run_select(world["checkpoint"], world["labelled"], world["pool"], out, config,
                      progress=False, log=lambda m: None)  # fmt: skip


def _cli(world, out, *extra):
    args = ["select", "--checkpoint", str(world["checkpoint"]), "--labelled",
            str(world["labelled"]), "--pool", str(world["pool"]), "--budget", "5", "--out",
            str(out), *CLI_EGL, *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


def _scores(out) -> np.ndarray:
    """scores.csv's scores in image-name order."""
    with open(out / "scores.csv") as f:
        by_name = {row["image"]: float(row["score"]) for row in csv.DictReader(f)}
    return np.array([by_name[n] for n in sorted(by_name)])


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    """Output folders of an exact selection and of an approx one with probes (from the CLI)."""
    root = tmp_path_factory.mktemp("estimator")
    _run(world, root / "exact", EXACT)
    flags = ("--estimator", "approx", "--exact-neighbours", "1", "--probes", "2")
    result = _cli(world, root / "probes", *flags)
    assert result.exit_code == 0, (result.output, result.exception)
    return {"exact": root / "exact", "probes": root / "probes"}


def test_every_neighbour_exact_is_the_exact_sum(world, runs, tmp_path):
    # K = 4: with n_exact >= K the tail is empty, its mean and probes contribute nothing, and
    # the score is Eq. 12's sum itself (float32 products against the exact path's float64 sum)
    exact = _scores(runs["exact"])
    selected = json.loads((runs["exact"] / "summary.json").read_text())["selected"]
    for n_exact, n_probes in ((4, 3), (9, 0)):
        out = tmp_path / f"m{n_exact}"
        summary = _run(world, out, _with(EXACT, estimator="approx", n_exact=n_exact,
                                         n_probes=n_probes))  # fmt: skip
        np.testing.assert_allclose(_scores(out), exact, rtol=1e-5)
        assert summary["selected"] == selected
        assert summary["estimator"] == f"approx --exact-neighbours {n_exact} --probes {n_probes}"
    # the same scores, but recorded as another estimator: their own chunks
    assert (
        summary["fingerprint"]
        != json.loads((runs["exact"] / "summary.json").read_text())["fingerprint"]
    )


def test_approx_ranks_like_exact(world, tmp_path):
    # K = 12, n_exact = 8: the 4 least probable neighbours by their mean cotangent, no probes
    wide = _with(EXACT, hyperparameters=(("k", 12), ("perplexity", 4.0)))
    _run(world, tmp_path / "exact", wide)
    exact = _scores(tmp_path / "exact")
    for n_exact in (8, 0):  # a tail of 4, and every neighbour in the tail
        out = tmp_path / f"approx{n_exact}"
        _run(world, out, _with(wide, estimator="approx", n_exact=n_exact))
        approx = _scores(out)
        # measured on this fixture: Spearman 1.0 (n_exact 8) and 0.9994 (n_exact 0)
        assert scipy.stats.spearmanr(exact, approx).statistic > 0.98
        # without probes the spread term is left out: a lower bound, up to float32 rounding
        assert (approx <= exact * (1 + 1e-5)).all()
    assert np.abs(approx / exact - 1).mean() > 1e-5  # n_exact 0: an estimate (measured 4e-4)
    # without probes the scores depend on no seed
    _run(world, tmp_path / "seed1", _with(wide, estimator="approx", n_exact=8, seed=1))
    np.testing.assert_array_equal(_scores(tmp_path / "seed1"), _scores(tmp_path / "approx8"))


def test_probes_are_reproducible_and_resumable(world, runs, tmp_path, monkeypatch):
    summary = json.loads((runs["probes"] / "summary.json").read_text())
    assert summary["estimator"] == "approx --exact-neighbours 1 --probes 2"
    scoring = summary["config"]["scoring"]
    assert (scoring["n_exact"], scoring["n_probes"]) == (1, 2)
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
    other = _run(world, tmp_path / "seed1", _with(PROBES, seed=1))
    assert other["fingerprint"] != resumed["fingerprint"]
    probed, exact = _scores(runs["probes"]), _scores(runs["exact"])
    assert not np.array_equal(_scores(tmp_path / "seed1"), probed)  # other seed, other signs
    assert not np.allclose(probed, exact, rtol=1e-6)  # an estimate, not the exact score


def _probes_folder(tmp_path, exact_folder):
    """A folder written by the short-lived ``--estimator probes`` (never released)."""
    folder = tmp_path / "probes-era"
    folder.mkdir()
    config = json.loads((exact_folder / "select_config.json").read_text())
    config = {k: v for k, v in config.items() if k not in ("hyperparameters", "scoring")}
    config.update(estimator="probes", n_probes=4)  # that era's flat shape
    (folder / "select_config.json").write_text(json.dumps(config))
    return folder


def test_another_estimator_in_the_same_folder_is_refused(world, runs, tmp_path):
    approx = "approx --exact-neighbours 1 --probes 2"
    with pytest.raises(
        ValueError,
        match=rf"--estimator {approx}: .*exact holds a selection scored with "
        r"--estimator exact \(recorded in .*select_config.json\).*another --out",
    ):
        _run(world, runs["exact"], PROBES)
    for changes, now in (({"n_exact": 2}, "--exact-neighbours 2 --probes 2"),
                         ({"n_probes": 3}, "--exact-neighbours 1 --probes 3")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"approx {now}: .*scored with --estimator {approx}"):
            _run(world, runs["probes"], _with(PROBES, **changes))
    legacy = tmp_path / "legacy"  # a folder finished before the option: summary.json only
    legacy.mkdir()
    summary = json.loads((runs["exact"] / "summary.json").read_text())
    summary["config"] = {  # that era's config: no estimator anywhere
        k: v for k, v in summary["config"].items() if k not in ("hyperparameters", "scoring")
    }
    (legacy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match=r"scored with --estimator exact \(recorded in .*summary"):
        _run(world, legacy, PROBES)
    old = _probes_folder(tmp_path, runs["exact"])
    for config, now in ((EXACT, "exact"), (PROBES, approx)):
        with pytest.raises(
            ValueError,
            match=rf"--estimator {now}: .*probes-era holds a selection scored with an estimator "
            r"this version does not know, 'probes' \(recorded in .*select_config.json; known: "
            r"exact and approx\).*give another --out",
        ):
            _run(world, old, config)
    assert not (old / "partial").exists()  # refused before anything was written
    same = shutil.copytree(runs["exact"], tmp_path / "same")  # same estimator: goes on
    assert _run(world, same, EXACT)["chunks_reused"] == 3


def test_check_approx_measures_the_ranking_on_a_sample(world, runs, tmp_path):
    exact = dict(zip(sorted(world["pool_names"]), _scores(runs["exact"]), strict=True))
    # n_exact >= K: the approx scores are the exact ones, so the check must find full agreement
    summary = _run(world, tmp_path / "full", _with(EXACT, estimator="approx", n_exact=4,
                                                     check_approx=20))  # fmt: skip
    check = summary["approx_check"]
    assert check["n"] == 20 and check["top"] == 2 and len(set(check["positions"])) == 20
    assert check["spearman"] > 0.9999 and check["top_overlap"] == 1.0 and check["passes"]
    # n_exact 0: the check's exact scores are those of the exact run, for the sampled images
    summary = _run(world, tmp_path / "tail", _with(EXACT, estimator="approx", n_exact=0,
                                                     check_approx=20))  # fmt: skip
    check = summary["approx_check"]
    with open(tmp_path / "tail" / "scores.csv") as f:
        approx = {row["image"]: float(row["score"]) for row in csv.DictReader(f)}
    names = sorted(approx)  # scores.csv rows are the scored candidates
    sampled = [names[i] for i in check["positions"]]
    truth = np.array([exact[n] for n in sampled])
    rho = scipy.stats.spearmanr(truth, [approx[n] for n in sampled]).statistic
    assert abs(check["spearman"] - rho) < 1e-6
    assert json.loads((tmp_path / "tail" / "summary.json").read_text())["approx_check"] == check


def test_bad_estimator_settings_name_the_option(world, tmp_path):
    for changes, message in (
        ({"estimator": "probes"}, "--estimator 'probes' (expected exact or approx)"),
        ({"estimator": "approx", "n_exact": -1}, "--exact-neighbours -1 (expected an integer"),
        ({"estimator": "approx", "n_exact": 2.5}, "--exact-neighbours 2.5 (expected an integer"),
        ({"estimator": "approx", "n_probes": -1}, "--probes -1 (expected an integer >= 0)"),
        ({"n_probes": 3}, "--probes 3: applies to --estimator approx only"),
        ({"n_exact": 2, "n_probes": 3}, "--exact-neighbours 2, --probes 3: applies to --estim"),
        ({"check_approx": 10}, "--check-approx 10: applies to --estimator approx only"),
        ({"estimator": "approx", "check_approx": -1}, "--check-approx -1 (expected an integer"),
    ):
        with pytest.raises(ValueError) as info:
            select_config(budget=1, **changes)
        assert message in str(info.value), (changes, str(info.value))
    cases = {
        ("--estimator", "probes"): "--estimator 'probes' (expected exact or approx)",
        ("--estimator", "approx", "--exact-neighbours", "-1"): "--exact-neighbours -1 (expected "
        "an integer >= 0)",
        ("--estimator", "approx", "--probes", "-1"): "--probes -1 (expected an integer >= 0)",
        ("--exact-neighbours", "3"): "--exact-neighbours 3: applies to --estimator approx only",
        ("--probes", "0"): "--probes 0: applies to --estimator approx only",
        ("--check-approx", "8"): "--check-approx 8: applies to --estimator approx only",
        ("--estimator", "exact", "--exact-neighbours", "8", "--probes", "2"): "--exact-neighbours "
        "8, --probes 2: applies to --estimator approx only",
        ("--strategy", "random", "--estimator", "approx"): "--estimator approx: strategy "
        "'random' computes no gradient norms",
        ("--param", "estimator=approx"): "--param estimator=approx: give it as --estimator",
        ("--param", "n_probes=2"): "--param n_probes=2: give it as --probes",
        ("--param", "approx_check=9"): "--param approx_check=9: give it as --check-approx",
    }
    for flags, message in cases.items():
        result = _cli(world, tmp_path / "out", *flags)
        assert isinstance(result.exception, ValueError), (flags, result.output)
        assert message in str(result.exception), (flags, str(result.exception))
    assert not (tmp_path / "out").exists()  # refused before anything was written
