"""One settings object per strategy, one ScoringConfig: every selection setting of `eglpp run`
reaches `eglpp select` and vice versa (the fields are walked, not listed by hand)."""

from __future__ import annotations

import dataclasses

import pytest

from eglpp.cli import load_command
from eglpp.experiment.config import ExperimentConfig, config_from_dict
from eglpp.practitioner.settings import build_scoring, build_strategy
from eglpp.scoring.settings import ScoringConfig
from eglpp.strategies import STRATEGIES, StrategySettings, settings_field

#: ScoringConfig fields and the `eglpp select` flag of each.
SCORING_FLAGS = {
    "gradnorm": "--gradnorm",
    "gradnorm_method": "--gradnorm-method",
    "max_memory": "--max-memory",
    "n_exact": "--exact-neighbours",
    "n_probes": "--probes",
    "approx_check": "--check-approx",
}
#: Strategy settings that apply to training, not to selection (eglpp select refuses them).
TRAINING_ONLY = {("learning-loss", "head_epochs")}


def _other(value):
    """A valid value other than the default, for the settings walked here."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.5
    return {
        "all": "neighbours",
        "vmap": "hooks",
        "auto": "vmap",
        "ground_truth": "prediction",
        "exact": "approx",
        "margin": "kl",
        "bits": "reference",
    }[value]


def _select_options() -> set[str]:
    command = load_command("select")
    return {opt for p in command.params for opt in p.opts}


def test_every_scoring_field_has_a_select_flag_and_a_run_setting():
    fields = [f.name for f in dataclasses.fields(ScoringConfig)]
    assert sorted(fields) == sorted(SCORING_FLAGS)  # a new field needs its flag here
    options = _select_options()
    for name in fields:
        assert SCORING_FLAGS[name] in options, name
        default = getattr(ScoringConfig(), name)
        value = {"gradnorm": "conv_linear", "max_memory": "2GiB"}.get(name) or _other(default)
        changes = {name: value}
        assert getattr(build_scoring(**changes), name) == value
        run = config_from_dict({"scoring": changes})
        assert getattr(run.scoring, name) == value
    assert isinstance(ExperimentConfig().scoring, ScoringConfig)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_setting_reaches_run_and_select(name):
    kind = STRATEGIES[name]
    assert isinstance(getattr(StrategySettings(), settings_field(name)), kind)
    for f in dataclasses.fields(kind):
        if f.name == "min_distance":  # None by default: test_min_distance_reaches_both
            continue
        value = _other(getattr(kind(), f.name))
        run = config_from_dict({"strategy": {name: {f.name: value}}})
        assert getattr(run.strategy.get(name), f.name) == value, (name, f.name)
        if (name, f.name) in TRAINING_ONLY:
            with pytest.raises(ValueError, match="training setting"):
                build_strategy(name, ((f.name, value),), "exact")
            continue
        if f.name == "estimator":  # its own flag
            selected = build_strategy(name, (), value)
        else:
            selected = build_strategy(name, ((f.name, value),), "exact")
        assert getattr(selected, f.name) == value, (name, f.name)
        assert selected == dataclasses.replace(kind(), **{f.name: value})


def test_min_distance_reaches_both():
    run = config_from_dict({"strategy": {"multipeak": {"min_distance": 3}}})
    assert run.strategy.multipeak.min_distance == 3
    assert build_strategy("multipeak", (("min_distance", 3),), "exact").min_distance == 3
