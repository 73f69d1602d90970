"""Checkpoints of pose models: state dicts plus the architecture, loaded with ``weights_only``.

A checkpoint is ``{"format", "config" (HourglassConfig as a dict), "model", "aux", "extra"}``
written atomically; loading checks the architecture and names the fields that differ.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from torch import nn

from eglpp.io import StateFileError, atomic_torch_save, torch_load
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass

__all__ = ["save_checkpoint", "load_checkpoint", "load_model"]

_FORMAT = "eglpp.pose.hourglass/1"


def save_checkpoint(
    path: str | Path,
    model: StackedHourglass,
    *,
    aux: nn.Module | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the state dicts, the HourglassConfig as a plain dict and ``extra`` atomically."""
    cpu = lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()}  # noqa: E731
    payload = {
        "format": _FORMAT,
        "config": asdict(model.config),
        "model": cpu(model),
        "aux": None if aux is None else cpu(aux),
        "extra": dict(extra or {}),
    }
    return atomic_torch_save(path, payload)


def _read(path: str | Path) -> dict:
    payload = torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise StateFileError(f"{path}: not an eglpp hourglass checkpoint (format {_FORMAT})")
    for key, kind in (("config", dict), ("model", dict), ("extra", dict)):
        if not isinstance(payload.get(key), kind):
            raise StateFileError(
                f"{path}: checkpoint field '{key}' is missing or not a {kind.__name__}"
            )
    return payload


def _load_weights(path: str | Path, module: nn.Module, weights: dict, what: str) -> None:
    """``module.load_state_dict(weights)``; weights of other shapes or names raise
    StateFileError naming the file and the first mismatch."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = "; ".join(lines[1:3] or lines[:1])[:300]
        raise StateFileError(
            f"{path}: the {what} weights do not fit the architecture stored with them ({detail})"
        ) from exc


def load_checkpoint(
    path: str | Path, model: StackedHourglass, *, aux: nn.Module | None = None
) -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model`` (and ``aux``); returns extra.

    Raises ValueError naming the differing fields when the checkpoint's architecture is not the
    model's, and when ``aux`` is given but the checkpoint has none.
    """
    payload = _read(path)
    mine = asdict(model.config)
    if payload["config"] != mine:
        diff = [
            f"{k}: checkpoint {payload['config'].get(k)!r}, model {mine.get(k)!r}"
            for k in sorted(set(mine) | set(payload["config"]))
            if payload["config"].get(k) != mine.get(k)
        ]
        raise ValueError(f"{path}: checkpoint is of another architecture ({'; '.join(diff)})")
    _load_weights(path, model, payload["model"], "model")
    if aux is not None:
        if not isinstance(payload.get("aux"), dict):
            raise ValueError(f"{path}: checkpoint has no aux module weights")
        _load_weights(path, aux, payload["aux"], "aux module")
    return payload["extra"]


def load_model(path: str | Path) -> StackedHourglass:
    """Build a StackedHourglass from a checkpoint's stored config and load its weights."""
    payload = _read(path)
    try:
        config = HourglassConfig(**payload["config"])
    except (TypeError, ValueError) as exc:
        raise StateFileError(f"{path}: stored config is not a HourglassConfig ({exc})") from exc
    model = StackedHourglass(config)
    load_checkpoint(path, model)
    return model
