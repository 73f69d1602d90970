"""Settings of ``eglpp select`` gathered from the checkpoint, the flags and the output folder.

- :func:`checkpoint_settings`: the input size and heatmap σ the checkpoint was trained with;
- :func:`parse_params`: ``--param NAME=VALUE`` pairs;
- :func:`strategy_params`: the strategy's keyword arguments (``--param``, device, estimator);
- :func:`check_estimator`: an output folder keeps one EGL++ estimator. Its select config is
  saved as ``OUT/select_config.json`` when scoring starts (and in ``summary.json`` at the end);
  a rerun in the same folder with another ``--estimator``, ``--exact-neighbours`` or ``--probes``
  is refused, so that its chunks, tables and summary never mix exact and estimated scores, and
  so is a folder whose recorded estimator this version does not know. (A new checkpoint or
  labelled set in the same folder is the next round: its chunks get a new fingerprint.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = [
    "checkpoint_settings",
    "parse_params",
    "strategy_params",
    "estimator_of",
    "check_estimator",
]


def checkpoint_settings(checkpoint: Path) -> dict:
    """``input_size`` and ``sigma`` of the training that wrote ``checkpoint``, where recorded:
    ``train.json`` beside it (``eglpp train``) or an ``eglpp run`` ``config.json`` above it."""
    from eglpp.io import read_json

    found: dict = {}
    train_json = checkpoint.parent / "train.json"
    if train_json.is_file():
        data = read_json(train_json)
        found["input_size"] = (data.get("options") or {}).get("input_size")
        found["sigma"] = (data.get("train") or {}).get("sigma")
    else:
        for folder in list(checkpoint.resolve().parents)[:4]:
            if (folder / "config.json").is_file():
                data = read_json(folder / "config.json")
                found["input_size"] = data.get("input_size")
                found["sigma"] = (data.get("cycle_train") or {}).get("sigma")
                break
    return {k: v for k, v in found.items() if v is not None}


def parse_params(params: list[str]) -> tuple[tuple[str, object], ...]:
    import yaml

    pairs = []
    for p in params:
        if "=" not in p:
            raise ValueError(f"--param {p!r}: expected NAME=VALUE, e.g. --param k=10")
        name, value = p.split("=", 1)
        pairs.append((name.strip().replace("-", "_"), yaml.safe_load(value)))
    return tuple(pairs)


def estimator_of(config: dict) -> str | None:
    """How a saved select config scored EGL++'s gradients (None: a strategy without them)."""
    from eglpp.strategies import STRATEGIES

    kind = STRATEGIES.get(config.get("strategy"))
    if kind is None or "estimator" not in {f.name for f in dataclasses.fields(kind)}:
        return None
    name = config.get("estimator", "exact")  # folders written before the option: exact
    if name == "approx":
        n_exact, n_probes = config.get("n_exact"), config.get("n_probes")
        return f"approx --exact-neighbours {n_exact} --probes {n_probes}"
    return str(name)  # "exact", or one this version does not know (check_estimator refuses it)


def check_estimator(out: Path, config) -> None:
    """Refuse to go on in a folder whose selection was scored with another EGL++ estimator (or
    with one this version does not know)."""
    from eglpp.io import read_json
    from eglpp.practitioner.select import ESTIMATORS

    for name in ("select_config.json", "summary.json"):
        if (out / name).is_file():
            saved = read_json(out / name)
            saved = (saved.get("config") or {}) if name == "summary.json" else saved
            break
    else:
        return
    before, now = estimator_of(saved), estimator_of(dataclasses.asdict(config))
    if before is None or now is None:
        return
    if saved.get("estimator", "exact") not in ESTIMATORS:  # e.g. an earlier "probes"
        raise ValueError(
            f"--estimator {now}: {out} holds a selection scored with an estimator this version "
            f"does not know, {saved.get('estimator')!r} (recorded in {out / name}; known: "
            f"{' and '.join(ESTIMATORS)}); one output folder keeps one estimator: give another "
            "--out"
        )
    if before != now:
        raise ValueError(
            f"--estimator {now}: {out} holds a selection scored with --estimator {before} "
            f"(recorded in {out / name}); one output folder keeps one estimator: rerun with "
            f"--estimator {before}, or give another --out"
        )


def strategy_params(config) -> dict:
    """The strategy's keyword arguments: ``--param`` values, the device and the estimator."""
    from eglpp.strategies import STRATEGIES

    params = dict(config.hyperparameters)
    kind = STRATEGIES.get(config.strategy)
    fields = {f.name for f in dataclasses.fields(kind)} if kind is not None else set()
    if "device" in fields:
        params.setdefault("device", config.device)
    if "estimator" in params:
        raise ValueError(
            f"--param estimator={params['estimator']}: give it as --estimator exact|approx"
        )
    flags = {"n_exact": "--exact-neighbours", "n_probes": "--probes"}
    for name, flag in {**flags, "approx_check": "--check-approx"}.items():
        if name in params:
            raise ValueError(
                f"--param {name}={params[name]}: give it as {flag} (with --estimator approx)"
            )
    if "estimator" in fields:
        params["estimator"] = config.estimator
    elif config.estimator != "exact":
        raise ValueError(
            f"--estimator {config.estimator}: strategy {config.strategy!r} computes no gradient "
            "norms (the estimator is EGL++'s: --strategy egl++)"
        )
    return params
