"""Common random numbers: every strategy of a (run, cycle) retrains with the same randomness.

Table 1's p-values and the paired-noise figures rest on it: with ``common_random_numbers`` on,
the retraining of cycle c draws from (seed, run, cycle) only, and the labelled images come in
an order keyed by their pool index, so two strategies' models differ by what they selected,
not by training noise. The tests watch the retraining from outside: the seed handed to
``fit``, and the pool images in the order the training actually reads them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

import eglpp.experiment.loop as loop
from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.rundir import RunPaths
from eglpp.strategies import MultiPeakEntropy, RandomSampling

STRATEGIES = ["random", "coreset"]


class _Reading(Subset):
    """The training set as it is, recording the positions the training reads, in order."""

    def __init__(self, dataset) -> None:
        super().__init__(dataset, list(range(len(dataset))))
        self.read: list[int] = []
        for name in ("skeleton", "input_size"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __getitem__(self, i):
        self.read.append(int(i))
        return super().__getitem__(i)

    def __getitems__(self, indices):
        return [self[i] for i in indices]


def _run_spying(monkeypatch, tmp_path, cfg) -> list[dict]:
    """Run ``cfg`` in one process; per ``fit`` call (base model, then each strategy's cycles
    in order): its seed and the pool indices of the images it trained on, in reading order."""
    calls = []
    real_fit = loop.fit

    def spy(model, train_set, config, *, seed, **kwargs):
        assert isinstance(train_set, Subset), "expected the pool's labelled images (no base set)"
        pool_index = np.asarray(train_set.indices)
        reading = _Reading(train_set)
        result = real_fit(model, reading, config, seed=seed, **kwargs)
        calls.append({"seed": seed, "pool": set(pool_index.tolist()),
                      "order": pool_index[reading.read], "epochs": config.epochs})  # fmt: skip
        return result

    monkeypatch.setattr(loop, "fit", spy)
    loop.run_experiment(cfg, tmp_path, log=lambda m: None)
    assert len(calls) == 1 + len(cfg.strategies) * cfg.cycles
    return calls


def _by_cycle(cfg, calls) -> dict[tuple[str, int], dict]:
    """The retraining calls by (strategy, cycle): one process runs them in that order."""
    cycles = iter(calls[1:])
    return {(s, c): next(cycles) for s in cfg.strategies for c in range(1, cfg.cycles + 1)}


def _epochs(order: np.ndarray, epochs: int) -> list[np.ndarray]:
    assert len(order) % epochs == 0
    return np.split(order, epochs)


@pytest.fixture(scope="module")
def cfg(micro_config):
    micro = micro_config(strategies=STRATEGIES, cycle_train={"epochs": 2, "batch_size": 8})
    return config_from_dict(micro, base=preset("tiny"))


def test_strategies_of_a_cycle_retrain_with_one_seed_and_one_order_of_shared_images(
    monkeypatch, tmp_path, cfg
):
    """Two strategies that selected different images: same seed in a (run, cycle), and in
    every epoch the images both labelled come in the same relative order."""
    retrain = _by_cycle(cfg, _run_spying(monkeypatch, tmp_path, cfg))
    for c in range(1, cfg.cycles + 1):
        a, b = (retrain[(s, c)] for s in STRATEGIES)
        assert a["pool"] != b["pool"], f"cycle {c}: the strategies selected alike (no test)"
        assert a["seed"] == b["seed"], f"cycle {c}: the strategies retrain with other seeds"
        shared = a["pool"] & b["pool"]
        assert len(shared) >= cfg.initial
        for epoch, (ea, eb) in enumerate(
            zip(_epochs(a["order"], a["epochs"]), _epochs(b["order"], b["epochs"]), strict=True)
        ):
            both = set(ea.tolist()) & set(eb.tolist()) & shared
            in_a = [int(i) for i in ea if i in both]
            in_b = [int(i) for i in eb if i in both]
            assert in_a == in_b, f"cycle {c} epoch {epoch}: shared images in another order"
    seeds = {retrain[(STRATEGIES[0], c)]["seed"] for c in range(1, cfg.cycles + 1)}
    assert len(seeds) == cfg.cycles, "every cycle retrains with its own seed"


def _picks_the_first(self, inputs, rng):
    """A strategy's scores made to prefer the lowest unlabelled positions (both pick alike)."""
    return -np.arange(inputs.n_unlabelled, dtype=float)


def _final_weights(out, cfg, name) -> dict[str, torch.Tensor]:
    path = RunPaths.model(RunPaths(out).cycle(0, name, cfg.cycles))
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("common", [True, False])
def test_strategies_that_label_the_same_images_train_identical_models(
    monkeypatch, tmp_path, micro_config, common
):
    """Two strategies made to select alike: with common random numbers their retrained models
    (from scratch: the initial weights too) are bit-identical, so a paired difference is 0;
    without, they differ (so the comparison can fail)."""
    monkeypatch.setattr(RandomSampling, "score", _picks_the_first)
    monkeypatch.setattr(MultiPeakEntropy, "score", _picks_the_first)
    micro = micro_config(strategies=["random", "multipeak"], retrain="scratch",
                         common_random_numbers=common)  # fmt: skip
    cfg = config_from_dict(micro, base=preset("tiny"))
    results = loop.run_experiment(cfg, tmp_path, log=lambda m: None)
    labelled = [np.load(RunPaths(tmp_path).labelled(0, s)) for s in cfg.strategies]
    np.testing.assert_array_equal(labelled[0], labelled[1])
    a, b = (_final_weights(tmp_path, cfg, s) for s in cfg.strategies)
    same = all(torch.equal(a[k], b[k]) for k in a)
    if common:
        assert same, "same labelled images, common random numbers: the models must be equal"
        assert results["scores"]["random"] == results["scores"]["multipeak"]
    else:
        assert not same
