"""Settings of ``eglpp select`` gathered from the checkpoint, the flags and the output folder.

- :func:`checkpoint_settings`: the input size and heatmap σ the checkpoint was trained with;
- :func:`parse_params`: ``--param NAME=VALUE`` pairs;
- :func:`build_strategy`: the strategy's settings object from ``--param`` and ``--estimator``;
- :func:`build_scoring`: the scoring settings from their flags;
- :func:`check_estimator`: an output folder keeps one EGL++ estimator. Its select config is
  saved as ``OUT/select_config.json`` when scoring starts (and in ``summary.json`` at the end);
  a rerun in the same folder with another ``--estimator``, ``--exact-neighbours`` or ``--probes``
  is refused, so that its chunks, tables and summary never mix exact and estimated scores, and
  so is a folder whose recorded estimator this version does not know;
- :func:`check_same_selection`: a folder keeps one selection. A rerun of the same command
  resumes it; another selection there (another checkpoint, labelled set, pool, strategy,
  budget: the next round too) is refused unless ``overwrite``, since round 1's annotations
  and Label Studio tasks refer to the selection they were made for.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from eglpp.io import read_json, torch_load
from eglpp.outdir import refusal
from eglpp.practitioner.select import SelectConfig
from eglpp.scoring.settings import ScoringConfig
from eglpp.strategies import STRATEGIES, Strategy, make_strategy

__all__ = [
    "checkpoint_settings",
    "parse_params",
    "build_strategy",
    "build_scoring",
    "estimator_of",
    "check_estimator",
    "check_same_selection",
]

#: What makes another selection (``select_config.json`` keys): the fingerprint stands for the
#: scores' inputs (checkpoint, labelled set, pool, scoring settings).
_SAME_SELECTION = ("strategy", "hyperparameters", "budget", "pre_annotate", "fingerprint")

#: EGL++ gradient estimators (``eglpp.strategies.EGLPlusPlus.estimator``).
ESTIMATORS = ("exact", "approx")
#: Scoring settings that have their own flags (``ScoringConfig`` fields).
_SCORING_FLAGS = {
    "n_exact": "--exact-neighbours",
    "n_probes": "--probes",
    "approx_check": "--check-approx",
    "gradnorm": "--gradnorm",
    "gradnorm_method": "--gradnorm-method",
    "max_memory": "--max-memory",
    "device": "--device",
}


def checkpoint_settings(checkpoint: Path) -> dict:
    """``input_size``, ``normalize`` and ``sigma`` of the training that wrote ``checkpoint``,
    where recorded: ``train.json`` beside it (``eglpp train``), the checkpoint's own record
    (``eglpp train`` since rectangular inputs) or an ``eglpp run`` ``config.json`` above it.
    A checkpoint without a recorded normalisation was fed RGB in [0, 1]."""
    if not checkpoint.is_file():
        raise FileNotFoundError(f"--checkpoint {checkpoint}: no such file")
    found: dict = {}
    train_json = checkpoint.parent / "train.json"
    if train_json.is_file():
        data = read_json(train_json)
        found["input_size"] = (data.get("options") or {}).get("input_size")
        found["normalize"] = data.get("normalize") or (data.get("options") or {}).get("normalize")
        found["sigma"] = (data.get("train") or {}).get("sigma")
    else:
        for folder in list(checkpoint.resolve().parents)[:4]:
            if (folder / "config.json").is_file():
                data = read_json(folder / "config.json")
                found["input_size"] = data.get("input_size")
                found["sigma"] = (data.get("cycle_train") or {}).get("sigma")
                break
    if found.get("input_size") is None:  # a model.pt without its train.json
        extra = _checkpoint_extra(checkpoint)
        found |= {k: extra[k] for k in ("input_size", "normalize") if extra.get(k) is not None}
    return {k: v for k, v in found.items() if v is not None}


def _checkpoint_extra(checkpoint: Path) -> dict:
    """The ``extra`` record of an eglpp checkpoint ({} for any other file)."""
    try:
        payload = torch_load(checkpoint)
    except Exception:  # not ours, or not a checkpoint: its loader says why later
        return {}
    extra = payload.get("extra") if isinstance(payload, dict) else None
    return extra if isinstance(extra, dict) else {}


def parse_params(params: list[str]) -> tuple[tuple[str, object], ...]:

    pairs = []
    for p in params:
        if "=" not in p:
            raise ValueError(f"--param {p!r}: expected NAME=VALUE, e.g. --param k=10")
        name, value = p.split("=", 1)
        pairs.append((name.strip().replace("-", "_"), yaml.safe_load(value)))
    return tuple(pairs)


def estimator_of(config: dict) -> str | None:
    """How a saved select config scored EGL++'s gradients (None: a strategy without them).

    Reads today's shape (``hyperparameters`` and ``scoring`` sections) and the one before it
    (``estimator``, ``n_exact``, ``n_probes`` at the top level)."""
    kind = STRATEGIES.get(config.get("strategy"))
    if kind is None or "estimator" not in {f.name for f in dataclasses.fields(kind)}:
        return None
    hyper = config.get("hyperparameters")
    hyper = hyper if isinstance(hyper, dict) else {}
    scoring = config.get("scoring") if isinstance(config.get("scoring"), dict) else config
    name = hyper.get("estimator", config.get("estimator", "exact"))  # older folders: exact
    if name == "approx":
        n_exact, n_probes = scoring.get("n_exact"), scoring.get("n_probes")
        return f"approx --exact-neighbours {n_exact} --probes {n_probes}"
    return str(name)  # "exact", or one this version does not know (check_estimator refuses it)


def _recorded_estimator(saved: dict) -> str:
    hyper = saved.get("hyperparameters")
    hyper = hyper if isinstance(hyper, dict) else {}
    return hyper.get("estimator", saved.get("estimator", "exact"))


def check_estimator(out: Path, config: SelectConfig) -> None:
    """Refuse to go on in a folder whose selection was scored with another EGL++ estimator (or
    with one this version does not know)."""
    for name in ("select_config.json", "summary.json"):
        if (out / name).is_file():
            saved = read_json(out / name)
            saved = (saved.get("config") or {}) if name == "summary.json" else saved
            break
    else:
        return
    before, now = estimator_of(saved), estimator_of(config.to_dict())
    if before is None or now is None:
        return
    if _recorded_estimator(saved) not in ESTIMATORS:  # e.g. an earlier "probes"
        raise ValueError(
            f"--estimator {now}: {out} holds a selection scored with an estimator this version "
            f"does not know, {_recorded_estimator(saved)!r} (recorded in {out / name}; known: "
            f"{' and '.join(ESTIMATORS)}); one output folder keeps one estimator: give another "
            "--out"
        )
    if before != now:
        raise ValueError(
            f"--estimator {now}: {out} holds a selection scored with --estimator {before} "
            f"(recorded in {out / name}); one output folder keeps one estimator: rerun with "
            f"--estimator {before}, or give another --out"
        )


def build_strategy(name: str, params: tuple[tuple[str, object], ...], estimator: str) -> Strategy:
    """The strategy's settings object: its ``--param`` values and EGL++'s ``--estimator``.

    Settings with a flag of their own are refused as ``--param`` (naming the flag), and so is
    ``--estimator approx`` for a strategy without gradient norms."""
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"invalid select settings: --estimator {estimator!r} (expected exact or approx)"
        )
    params = dict(params)
    if "estimator" in params:
        raise ValueError(
            f"--param estimator={params['estimator']}: give it as --estimator exact|approx"
        )
    for key, flag in _SCORING_FLAGS.items():
        if key in params:
            raise ValueError(f"--param {key}={params[key]}: give it as {flag}")
    kind = STRATEGIES.get(name)
    fields = {f.name for f in dataclasses.fields(kind)} if kind is not None else set()
    if "head_epochs" in params:
        raise ValueError(
            f"--param head_epochs={params['head_epochs']}: a training setting (eglpp run); "
            "eglpp select takes the head from the checkpoint"
        )
    if "estimator" in fields:
        params["estimator"] = estimator
    elif estimator != "exact":
        raise ValueError(
            f"--estimator {estimator}: strategy {name!r} computes no gradient "
            "norms (the estimator is EGL++'s: --strategy egl++)"
        )
    return make_strategy(name, **params)


def build_scoring(**flags: Any) -> ScoringConfig:
    """:class:`~eglpp.scoring.settings.ScoringConfig` from select's flags, each bad value
    named by its flag (``n_exact=-1`` -> ``--exact-neighbours -1``)."""
    names = {**_SCORING_FLAGS, "approx_check": "--check-approx"}
    bad = [
        f"{names[k]} {v!r} (expected an integer >= 0)"
        for k, v in flags.items()
        if k in ("n_exact", "n_probes", "approx_check")
        and (isinstance(v, bool) or not isinstance(v, int) or v < 0)
    ]
    if bad:
        raise ValueError(f"invalid select settings: {', '.join(bad)}")
    try:
        return ScoringConfig(**flags)
    except ValueError as exc:  # gradnorm, gradnorm_method: say which flag
        text = str(exc)
        for key, flag in names.items():
            text = text.replace(f"scoring.{key}", flag)
        raise ValueError(text) from None


def check_same_selection(out: Path, config: SelectConfig, fp: str) -> None:
    """Refuse ``out`` where it holds another selection than the one of ``config`` and
    fingerprint ``fp`` (:data:`_SAME_SELECTION`); the same one is resumed."""
    path = out / "select_config.json"
    if not path.is_file():
        if (out / "selection.csv").is_file():  # written before select_config.json existed
            raise ValueError(refusal(out, "a selection whose settings are not recorded",
                                     out / "selection.csv"))  # fmt: skip
        return
    saved = read_json(path)
    now = json.loads(json.dumps({**config.to_dict(), "fingerprint": fp}, default=str))
    diff = [k for k in _SAME_SELECTION if saved.get(k) != now.get(k)]
    if not diff:
        return
    settings = [k for k in diff if k != "fingerprint"]
    why = ", ".join(
        f"--{k.replace('_', '-')} {saved.get(k)}" for k in settings if k != "hyperparameters"
    )
    if "hyperparameters" in settings:
        why += (", " if why else "") + f"--param {saved.get('hyperparameters')}"
    if not settings:
        why = "another checkpoint, labelled set or pool"
    what = f"another selection ({saved.get('strategy')}, budget {saved.get('budget')}: {why})"
    raise ValueError(refusal(out, what, path))
