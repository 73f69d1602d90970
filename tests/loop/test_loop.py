"""The pose active-learning loop: resumable after kill -9, deterministic, clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.loop import run_experiment
from eglpp.io import StateFileError, read_json
from eglpp.report.explain import explain_selection


@pytest.fixture(scope="module")
def micro(micro_config) -> dict:
    """The micro experiment with every strategy and a one-epoch fit of the Learning Loss head."""
    return micro_config(strategy={**micro_config()["strategy"], "ll_head_epochs": 1})


@pytest.fixture(scope="module")
def cfg(micro):
    """``cfg(**extra)``: the micro experiment's config, top-level keys replaced by ``extra``."""

    def make(**extra):
        return config_from_dict({**micro, **extra}, base=preset("tiny"))

    return make


def _selections(out: Path) -> dict[str, list[int]]:
    found = {}
    for path in sorted(out.glob("run-*/*/cycle-*/selection.npz")):
        with np.load(path) as z:
            found[str(path.relative_to(out))] = z["query_indices"].tolist()
    return found


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, cfg):
    out = tmp_path_factory.mktemp("reference")
    results = run_experiment(cfg(), out, log=_quiet, explain=explain_selection)
    return out, results


def test_results_schema_and_all_strategies(reference_run):
    out, results = reference_run
    assert results["n_labelled"] == [12, 18, 24]
    assert set(results["scores"]) == {"random", "coreset", "multipeak", "learning-loss", "egl++"}
    for runs in results["scores"].values():
        assert len(runs) == 1 and len(runs[0]) == 3
        assert all(0.0 <= v <= 1.0 for v in runs[0])
    base = {runs[0][0] for runs in results["scores"].values()}
    assert len(base) == 1, "every strategy starts from the same base model"
    assert read_json(out / "results.json") == results
    for s in results["scores"]:
        labelled = np.load(out / "run-00" / s / "labelled.npy")
        assert (labelled == 0).sum() == 12 and (labelled == 1).sum() == 6
        assert (labelled == 2).sum() == 6 and (labelled == -1).sum() == 40 - 24
    egl = np.load(out / "run-00" / "egl++" / "cycle-01" / "selection.npz")
    assert egl["detail_neighbours"].shape == (40 - 12, 4)
    assert (out / "run-00" / "egl++" / "cycle-01" / "explain_gallery.png").stat().st_size > 0


def test_phases_are_timed_and_tabulated(reference_run, micro):
    from eglpp.experiment.timing import timing_table

    out, results = reference_run
    for name in results["scores"]:
        seconds = read_json(out / "run-00" / name / "cycle-01" / "metrics.json")["seconds"]
        assert {"score", "train", "evaluate"} <= set(seconds), seconds
        assert all(v >= 0 for v in seconds.values())
    lines = timing_table(out).splitlines()
    assert lines[0].startswith("| step | timed | score s | aux s | train s | evaluate s |")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:] if line.startswith("|")}
    assert set(rows) == {"base model", *results["scores"]}
    assert rows["egl++"].split(" | ")[1] == str(micro["runs"] * micro["cycles"])
    # the HTML report shows the same table
    from eglpp.report.html import write_report

    page = write_report(out, out=out / "timing_report.html").read_text()
    section = page[page.index('<section id="timings">') :].split("</section>")[0]
    assert all(f">{name}</td>" in section for name in rows)


def test_same_seed_same_selections_other_seed_differs(reference_run, cfg, tmp_path):
    out, results = reference_run
    again = run_experiment(cfg(strategies=["random", "egl++"]), tmp_path / "a", log=_quiet)
    assert again["scores"]["egl++"] == results["scores"]["egl++"]
    ref = {k: v for k, v in _selections(out).items() if "random" in k or "egl++" in k}
    assert _selections(tmp_path / "a") == ref
    run_experiment(cfg(strategies=["random"], seed=1), tmp_path / "b", log=_quiet)
    assert _selections(tmp_path / "b") != {k: v for k, v in ref.items() if "random" in k}


def test_kill_minus_nine_then_resume_gives_identical_results(reference_run, micro, tmp_path):
    out_ref, results = reference_run
    cfg_path = tmp_path / "micro.yaml"
    cfg_path.write_text(yaml.safe_dump(micro))
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "eglpp.cli",
        "run",
        "--preset",
        "tiny",
        "--config",
        str(cfg_path),
        "--out",
        str(out),
    ]
    marker = out / "run-00" / "multipeak" / "cycle-01" / "selection.npz"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("run-00/*/cycle-*/metrics.json")}
    assert finished, "something had finished before the kill"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for p, mtime in finished.items():  # nothing that had finished was recomputed
        assert p.stat().st_mtime_ns == mtime
    assert read_json(out / "results.json")["scores"] == results["scores"]
    assert _selections(out) == _selections(out_ref)


def test_resume_with_another_thread_count_is_refused(reference_run, cfg):
    out, _ = reference_run
    assert json.loads((out / "numerics.json").read_text())["threads"] == 1  # tests: 1 thread
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match=r"1 CPU thread\(s\).*resume with --threads 1"):
            run_experiment(cfg(), out, log=_quiet)
    finally:
        torch.set_num_threads(1)
    warnings: list[str] = []
    numerics = json.loads((out / "numerics.json").read_text())
    (out / "numerics.json").write_text(json.dumps({**numerics, "torch": "0.0"}))
    try:
        run_experiment(cfg(), out, log=warnings.append)  # finished: nothing recomputed
    finally:
        (out / "numerics.json").write_text(json.dumps(numerics))
    assert any("torch '0.0'" in w for w in warnings), warnings


def test_resume_refuses_another_config(reference_run, cfg):
    out, _ = reference_run
    with pytest.raises(ValueError, match="another config.*budget"):
        run_experiment(cfg(budget=7), out, log=_quiet)


def test_hooks_gradnorm_method_selects_as_vmap(reference_run, micro, cfg, tmp_path):
    out, _ = reference_run
    strategy = {**micro["strategy"], "gradnorm_method": "hooks"}
    run_experiment(cfg(strategies=["egl++"], cycles=1, strategy=strategy), tmp_path, log=_quiet)
    name = "run-00/egl++/cycle-01/selection.npz"
    with np.load(out / name) as ref, np.load(tmp_path / name) as got:
        assert got["query_indices"].tolist() == ref["query_indices"].tolist()
        np.testing.assert_allclose(got["scores"], ref["scores"], rtol=1e-3)


def test_bad_input_errors(cfg, tmp_path):
    with pytest.raises(ValueError, match="larger than the pool"):
        run_experiment(cfg(budget=100), tmp_path / "a", log=_quiet)
    with pytest.raises(ValueError, match="unknown strategy.*'nope'|'nope'.*random"):
        run_experiment(cfg(strategies=["random", "nope"]), tmp_path / "b", log=_quiet)
    with pytest.raises(ValueError, match="--poses"):
        run_experiment(cfg(dataset="lsp-lspet-rendered"), tmp_path / "c", log=_quiet)
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        run_experiment(
            cfg(dataset="lsp", data_root=str(tmp_path / "no-such-dir")), tmp_path / "d", log=_quiet
        )
    with pytest.raises(ValueError, match="gradnorm_method must be 'auto', 'vmap' or 'hooks'.*'gh"):
        config_from_dict({"strategy": {"gradnorm_method": "ghost"}})
    with pytest.raises(ValueError, match="'hooks' needs scoring.gradnorm"):
        config_from_dict({"strategy": {"gradnorm_method": "hooks", "gradnorm": "last"}})
    with pytest.raises(ValueError, match="calibration"):
        run_experiment(cfg(strategy={"calibration": "some"}), tmp_path / "e", log=_quiet)
    with pytest.raises(ValueError, match="unknown key.*epochz"):
        config_from_dict({"base_train": {"epochz": 3}})


def test_corrupt_state_is_named_and_nothing_is_lost(cfg, tmp_path):
    out = tmp_path / "run"
    config = cfg(strategies=["random"], cycles=1)
    run_experiment(config, out, log=_quiet)
    cycle = out / "run-00" / "random" / "cycle-01"
    (cycle / "selection.npz").write_bytes(b"garbage")
    (cycle / "metrics.json").unlink()
    with pytest.raises(StateFileError, match="selection.npz"):
        run_experiment(config, out, log=_quiet)
    model = out / "run-00" / "base" / "model.pt"
    model.write_bytes(b"not a checkpoint")
    with pytest.raises(StateFileError, match="model.pt"):
        run_experiment(config, out, log=_quiet)
    assert (out / "run-00" / "base" / "metrics.json").exists()  # nothing finished is deleted
    assert (out / "run-00" / "initial.npy").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "eglpp.cli",
            "run",
            "--preset",
            "tiny",
            "--strategies",
            "random,bogus",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "bogus" in proc.stderr and "Traceback" not in proc.stderr


def test_egl_pp_scoring_in_a_run_shows_a_progress_bar(monkeypatch, micro_config):
    """`eglpp run` shows a bar while EGL++'s gradient norms run (minutes on a real pool)."""
    import eglpp.scoring.pool_inputs as pool_inputs_module
    from eglpp.experiment.data import build_data
    from eglpp.experiment.pool import cycle_pool_inputs
    from eglpp.pose.hourglass import StackedHourglass

    updates = []

    class Recorder:  # rich.progress.Progress as the bar uses it
        def __init__(self, *columns, **options):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def add_task(self, what, total=None):
            updates.append(what)
            return 0

        def update(self, task, completed, total):
            updates.append((completed, total))

    monkeypatch.setattr(pool_inputs_module, "Progress", Recorder)
    cfg = config_from_dict(micro_config(strategies=["egl++"]), base=preset("tiny"))
    data = build_data(cfg)
    labelled_map = np.full(len(data.pool), -1)
    labelled_map[:12] = 0
    model = StackedHourglass(cfg.model)
    inputs = cycle_pool_inputs(frozenset({"pair_gradnorms"}), model, None, data, labelled_map, cfg)
    inputs.pair_gradnorms(np.zeros((28, 2), np.int64), "ground_truth")
    assert updates[0].startswith("gradient norms") and updates[-1] == (28, 28)
    assert [d for d, _ in updates[1:]] == sorted(d for d, _ in updates[1:])
    updates.clear()
    inputs = cycle_pool_inputs(frozenset({"pair_gradnorms"}), model, None, data, labelled_map, cfg,
                               progress=False)  # fmt: skip
    inputs.pair_gradnorms(np.zeros((28, 2), np.int64), "ground_truth")
    assert not updates
