"""Resumable scoring: an interrupted select reuses its finished chunks and selects the same."""

import json

import numpy as np
import pytest
from conftest import SIZE, flat, select_config, train_tiny

import eglpp.practitioner.select as select_module
from eglpp.practitioner.run import run_select
from eglpp.strategies import make_strategy

CONFIG = select_config(
    budget=5, strategy="egl++", hyperparameters=(("k", 4), ("perplexity", 2.0)),
    input_size=SIZE, chunk_size=8, batch_size=8,
)  # fmt: skip


def _quiet(_msg):
    pass


def test_interrupted_run_resumes_with_the_same_selection(world, tmp_path, monkeypatch):
    reference = run_select(world["checkpoint"], world["labelled"], world["pool"],
                           tmp_path / "ref", CONFIG, progress=False, log=_quiet)  # fmt: skip
    assert reference["chunks_computed"] == 5 and reference["chunks_reused"] == 0
    real, calls = select_module._chunk, []

    def dies_on_the_third(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # what an interrupted process leaves behind
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(select_module, "_chunk", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "cut",
                   CONFIG, progress=False, log=_quiet)  # fmt: skip
    assert len(list((tmp_path / "cut" / "partial").glob("*/chunk-*.npz"))) == 2
    monkeypatch.setattr(select_module, "_chunk", real)
    resumed = run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "cut",
                         CONFIG, progress=False, log=_quiet)  # fmt: skip
    assert resumed["chunks_reused"] == 2 and resumed["chunks_computed"] == 3
    assert resumed["selected"] == reference["selected"]
    ref_csv = (tmp_path / "ref" / "scores.csv").read_text()
    assert (tmp_path / "cut" / "scores.csv").read_text() == ref_csv
    # another budget or checkpoint is another selection: refused unless overwrite; then a larger
    # budget reuses every chunk and a new checkpoint scores afresh
    seven = select_config(**{**flat(CONFIG), "budget": 7})
    with pytest.raises(
        ValueError, match=r"holds another selection \(egl\+\+, budget 5: --budget 5\)"
    ):
        run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "cut", seven,
                   progress=False, log=_quiet)  # fmt: skip
    bigger = run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "cut",
                        seven, progress=False, log=_quiet, overwrite=True)  # fmt: skip
    assert bigger["chunks_reused"] == 5 and bigger["selected"][:5] == reference["selected"]
    other = train_tiny(world["labelled"], tmp_path / "other.pt", seed=3, epochs=1)
    with pytest.raises(ValueError, match="another checkpoint, labelled set or pool"):
        run_select(other, world["labelled"], world["pool"], tmp_path / "cut", seven,
                   progress=False, log=_quiet)  # fmt: skip
    fresh = run_select(other, world["labelled"], world["pool"], tmp_path / "cut", CONFIG,
                       progress=False, log=_quiet, overwrite=True)  # fmt: skip
    assert fresh["chunks_reused"] == 0 and fresh["fingerprint"] != reference["fingerprint"]


def test_chunked_scores_equal_whole_pool_scores(world, tmp_path):
    """EGL++ per chunk = EGL++ on the whole pool in one PoolInputs (the loop's way)."""
    one = select_config(**{**flat(CONFIG), "chunk_size": 1000})
    run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "one", one,
               progress=False, log=_quiet)  # fmt: skip
    run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path / "many", CONFIG,
               progress=False, log=_quiet)  # fmt: skip

    def scores(folder):
        rows = (tmp_path / folder / "scores.csv").read_text().splitlines()[1:]
        return np.array([float(r.split(",")[1]) for r in rows])

    np.testing.assert_allclose(scores("many"), scores("one"), rtol=1e-4)


def test_learning_loss_needs_a_checkpoint_with_its_head(world, tmp_path):
    with pytest.raises(ValueError, match="learning-loss.*auxiliary head"):
        run_select(world["checkpoint"], world["labelled"], world["pool"], tmp_path,
                   select_config(budget=3, strategy="learning-loss", input_size=SIZE),
                   progress=False, log=_quiet)  # fmt: skip
    from eglpp.pose.checkpoint import load_model
    from eglpp.pose.hourglass import StackedHourglass

    channels = load_model(world["checkpoint"]).feature_channels()
    aux = make_strategy("learning-loss").auxiliary(channels)
    assert isinstance(load_model(world["checkpoint"]), StackedHourglass)
    with_head = train_tiny(world["labelled"], tmp_path / "ll.pt", epochs=1, aux=aux)
    out = run_select(with_head, world["labelled"], world["pool"], tmp_path / "ll",
                     select_config(budget=3, strategy="learning-loss", input_size=SIZE),
                     progress=False, log=_quiet)  # fmt: skip
    assert len(out["selected"]) == 3
    scores = json.loads((tmp_path / "ll" / "summary.json").read_text())["selected"]
    assert scores == out["selected"]
