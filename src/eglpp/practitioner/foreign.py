"""``eglpp select --model PKG.MODULE:FACTORY``: a network of the user's own code.

The factory is imported the way ``uvicorn app:main`` imports an app: ``PKG.MODULE`` from the
current folder (put first on ``sys.path``) or the installed packages, then ``FACTORY``, a
function called with no arguments that returns the ``torch.nn.Module`` (one that needs
arguments is refused, naming them). ``--weights W.pt`` is a state dict (or ``{"state_dict":
...}``) read with ``torch.load(weights_only=True)``: no code in the file runs. ``--embedding
NAME`` is the submodule whose output (global-average-pooled) is the representation,
``--prediction KEY`` the output that is the prediction (a dict key, a NamedTuple field or a
tuple index; by default the output itself, which must then be a tensor: a dict or tuple output
without ``--prediction`` is refused, naming its keys). ``--loss PKG.MODULE:FN`` (imported the
same way) is the training loss the gradient norms differentiate, called on one example as
``FN(prediction (1, ...), target (1, ...), weight (1, J)) -> scalar``: the target is the
labelled joints' Gaussian heatmaps (σ: ``--sigma``, heatmap px) or their coordinates (input
px), the weight 1 for annotated joints, 0 for missing ones; without it eglpp's heatmap or
coordinate mean squared error. One forward of a blank input checks everything (the loss on it
too) before the pool is read. Every error is one line naming its flag.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from eglpp.pose.datasets.preprocess import input_hw
from eglpp.scoring.contract import ModelContract
from eglpp.scoring.forward import prediction_kind

__all__ = ["ForeignModel", "load_foreign", "import_factory", "FLAGS"]

#: The contract's arguments as ``eglpp select`` names them.
FLAGS = {
    "model": "--model",
    "prediction": "--prediction",
    "embedding": "--embedding",
    "loss": "--loss",
    "features": "--model",
}


@dataclass(frozen=True)
class ForeignModel:
    """The user's network as a contract, with what identifies it (``spec``, ``weights``)."""

    contract: ModelContract
    spec: str
    weights: Path | None
    identity: Path  # the file whose digest names the scores' chunks: the weights, or the module
    kind: str  # "heatmaps", "coordinates" or "other" (eglpp.scoring.forward.prediction_kind)
    n_joints: int | None
    loss: str | None = None  # the --loss PKG.MODULE:FN, None: eglpp's


def import_factory(spec: str, flag: str = "--model"):
    """``(factory, the file of its module)`` of ``PKG.MODULE:FACTORY`` (module docstring);
    errors name ``flag``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        what = "FACTORY, e.g. mynet.models:build" if flag == "--model" else "FN"
        raise ValueError(f"{flag} {spec!r}: expected PKG.MODULE:{what}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"{flag} {spec}: cannot import {module_name!r} ({exc}); run from the folder that "
            "holds it or install its package"
        ) from exc
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ValueError(f"{flag} {spec}: module {module_name!r} has no function {attr!r}")
    return factory, Path(module.__file__ or ".")


def _load_weights(model: nn.Module, weights: Path) -> None:
    if not weights.is_file():
        raise FileNotFoundError(f"--weights {weights}: no such file")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or not a torch file
        raise ValueError(f"--weights {weights}: not a state dict torch.load(weights_only=True) "
                         f"reads: {str(exc).splitlines()[0][:200]}") from exc  # fmt: skip
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"--weights {weights}: expected a state dict, got {type(state).__name__}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in own.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = [f"missing {', '.join(missing[:10])}" if missing else "",
             f"unexpected {', '.join(unexpected[:10])}" if unexpected else "",
             f"other shapes {'; '.join(shapes[:10])}" if shapes else ""]  # fmt: skip
    if any(parts):
        raise ValueError(
            f"--weights {weights}: does not fit the --model network: "
            + "; ".join(p for p in parts if p)
        )
    model.load_state_dict(state)


def _check_no_arguments(factory, spec: str) -> None:
    """Refuse a factory that cannot be called with no arguments, naming what it needs."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: just call it
        return
    needed = [
        name
        for name, p in signature.parameters.items()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if needed:
        raise ValueError(
            f"--model {spec}: the factory needs arguments ({', '.join(needed)}) but eglpp calls "
            "it with none: point --model at a function of yours that builds the network with "
            "no arguments (def build(): return Net(...))"
        )


def _pick(output, key):
    """The output ``key`` names (a dict key, a NamedTuple field or a tuple index)."""
    if isinstance(output, Mapping):
        return output[key]
    return getattr(output, key) if isinstance(key, str) else output[key]


def _output_kind(output) -> str:
    """A model output in words: ``a dict with keys 'a', 'b'``, ``a tuple of 2``."""
    if isinstance(output, Mapping):
        return f"a {type(output).__name__} with keys {', '.join(map(repr, output))}"
    if isinstance(output, tuple) and hasattr(output, "_fields"):
        return f"a {type(output).__name__} with fields {', '.join(output._fields)}"
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of {len(output)}"
    return f"a {type(output).__name__}"


def load_foreign(
    spec: str,
    weights: Path | None,
    embedding: str | None,
    prediction: str | None,
    input_size: int | tuple[int, int],
    loss: str | None = None,
) -> ForeignModel:
    """Build, load and check the user's network and loss (module docstring)."""
    H, W = input_hw(input_size, "--input-size")
    factory, module_file = import_factory(spec)
    _check_no_arguments(factory, spec)
    loss_fn = import_factory(loss, "--loss")[0] if loss is not None else None
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"--model {spec}: the factory returned a {type(model).__name__}, not a torch.nn.Module"
        )
    if weights is not None:
        _load_weights(model, Path(weights))
    key = prediction
    if prediction is not None and prediction.lstrip("-").isdigit():  # a tuple index
        key = int(prediction)
    contract = ModelContract(
        model, prediction=key, embedding=embedding, weighted_loss=loss_fn, flags=FLAGS
    )
    model.eval()
    with torch.no_grad():
        try:
            out = model(torch.zeros(1, 3, H, W))
        except Exception as exc:
            raise ValueError(f"--model {spec}: fails on a (1, 3, {H}, {W}) input (--input-size "
                             f"H×W): {str(exc)[:200]}") from exc  # fmt: skip
        if prediction is None and not isinstance(out, torch.Tensor):
            raise ValueError(
                f"--model {spec}: its output is {_output_kind(out)}, not the prediction tensor: "
                "name the prediction with --prediction (a dict key, a NamedTuple field or a "
                "tuple index)"
            )
        try:
            shape = tuple(contract.prediction_of(out).shape)
        except TypeError:  # the named output is no tensor
            raise ValueError(
                f"--prediction {prediction}: that output of --model {spec} is "
                f"{_output_kind(_pick(out, key))}, not a tensor "
                "(the prediction: heatmaps (B, J, h, w) or coordinates (B, J, 2))"
            ) from None
    kind = prediction_kind(shape)
    n_joints = shape[-3] if kind == "heatmaps" else shape[1] if kind == "coordinates" else None
    if loss_fn is not None:
        _check_loss(loss, loss_fn, shape, n_joints)
    return ForeignModel(contract, spec, weights, Path(weights or module_file), kind, n_joints, loss)


def _check_loss(spec: str, loss_fn, shape: tuple[int, ...], n_joints: int | None) -> None:
    """``--loss`` returns one finite number on a blank prediction, target and weight."""
    blank = torch.zeros(shape)
    weight = torch.ones(1, n_joints or 1)
    try:
        with torch.no_grad():
            value = loss_fn(blank, blank, weight)
    except Exception as exc:
        raise ValueError(
            f"--loss {spec}: fails on (prediction {shape}, target {shape}, weight "
            f"{tuple(weight.shape)}): {str(exc)[:200]}"
        ) from exc
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"--loss {spec}: must return the loss of one example as a scalar tensor (0-dim), "
            f"got {got}"
        )
