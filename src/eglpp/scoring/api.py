"""One call per strategy for any PyTorch model: ``eglpp.score`` and ``eglpp.select``.

>>> import torch, eglpp
>>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
>>> g = torch.Generator().manual_seed(0)
>>> X, Y = torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)
>>> pool = torch.randn(20, 3, generator=g)
>>> out = eglpp.select("egl++", net, pool, (X, Y), budget=3, embedding="1", k=5, perplexity=3)
>>> out.query_indices.shape, out.details["gradnorms"].shape
((3,), (20, 5))

The model is described by :class:`~eglpp.scoring.contract.ModelContract` (built here from
``prediction``, ``embedding``, ``pooling``, ``loss`` and ``features``; pass a contract, or
eglpp's ``StackedHourglass``, as ``model`` instead). The unlabelled inputs are a tensor
(U, ...) or a Dataset of inputs; the labelled set is ``(inputs, targets)`` tensors or a Dataset
of ``(input, target)`` pairs (or a pose data set). Everything else is the strategy's
hyperparameters (``k``, ``perplexity``, ``estimator``, …; see :mod:`eglpp.strategies`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from eglpp.devices import check_device
from eglpp.gradnorm.approx import DEFAULT_N_EXACT
from eglpp.pose.hourglass import StackedHourglass
from eglpp.scoring.contract import ModelContract, hourglass_contract
from eglpp.scoring.labels import LabelledCache
from eglpp.scoring.pool_inputs import pool_inputs
from eglpp.scoring.settings import ScoringConfig
from eglpp.strategies import make_strategy

__all__ = ["Scores", "Selection", "score", "select", "as_dataset", "as_found"]


@dataclass
class Scores:
    """A strategy's scores of the unlabelled inputs and the details that explain them
    (EGL++: ``neighbours`` (U, K) positions in the labelled set, ``p`` (U, K) = p(j|i),
    ``beta`` (U,), and for the exact estimator ``gradnorms`` (U, K) = ‖∇θ ℓ(y_j, f(x_i))‖²)."""

    strategy: str
    scores: np.ndarray
    details: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Selection(Scores):
    """:class:`Scores` plus ``query_indices`` (budget,): positions in the unlabelled set, best
    first."""

    query_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class _Rows(Dataset):
    """The rows of a tensor as a data set of inputs."""

    def __init__(self, rows: Tensor) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Tensor:
        return self.rows[i]


def as_dataset(data: Any, what: str) -> Dataset:
    """A Dataset as it is; a tensor or array as its rows; a tuple ``(inputs, targets)`` of
    tensors as pairs. ``what`` names the argument in errors."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (Tensor, np.ndarray)):
        return _Rows(torch.as_tensor(data).float())
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (torch.as_tensor(t).float() for t in data)
        if len(x) != len(y):
            raise ValueError(f"{what}: {len(x)} inputs but {len(y)} targets")
        return TensorDataset(x, y)
    raise TypeError(
        f"{what}: expected a torch Dataset, a tensor of inputs or an (inputs, targets) pair of "
        f"tensors, got {type(data).__name__}"
    )


def _contract(model, prediction, embedding, pooling, loss, features) -> ModelContract:
    if isinstance(model, ModelContract):
        return model
    described = (prediction, embedding, loss) != (None, None, None) or features
    if isinstance(model, StackedHourglass) and not described:
        return hourglass_contract(model)
    return ModelContract(
        model, prediction=prediction, embedding=embedding, pooling=pooling, loss=loss,
        features=tuple(features),
    )  # fmt: skip


def _inputs(strategy, contract, unlabelled, labelled, head, options: dict):
    """The strategy's PoolInputs for the contract's model (the experiment loop's path)."""
    pool = as_dataset(unlabelled, "unlabelled")
    lab = as_dataset(labelled if labelled is not None else torch.zeros(0), "labelled")
    needs = strategy.needs
    if "predicted_loss" in needs and head is None:
        raise ValueError(
            "learning-loss needs head=: the loss-prediction head trained with the model on the "
            "features it taps (features=…; LearningLoss().auxiliary(channels) builds one)"
        )
    if needs - {"predicted_loss", "heatmaps"} and len(lab) == 0:
        raise ValueError(f"labelled: strategy {strategy.name!r} needs a labelled set, got none")
    cache = LabelledCache(
        contract, lab, batch_size=options["batch_size"], device=options["device"],
        sigma=options["sigma"],
    )  # fmt: skip
    if len(lab) and not cache.pose and needs & {"pair_gradnorms", "expected_gradnorms"}:
        cache.check_pairs()
    scoring = ScoringConfig(
        gradnorm=options["params"], gradnorm_method=options["method"],
        n_exact=options["n_exact"], n_probes=options["n_probes"],
    )  # fmt: skip
    return pool_inputs(
        needs, contract, head, pool, lab, batch_size=options["batch_size"],
        device=options["device"], scoring=scoring, cache=cache, probe_seed=options["seed"],
    )  # fmt: skip


@contextmanager
def as_found(*modules: Any) -> Iterator[None]:
    """Put each module back as it was on exit, after an exception too: every submodule's
    train/eval flag, every parameter (the same Parameter object holding the same tensor, so the
    same device, dtype and values), its ``grad`` and ``requires_grad``, every buffer. Scoring
    moves the caller's model to ``device`` and into eval mode; the caller gets it back as found
    (the original tensors are held meanwhile). Entries that are no ``nn.Module`` are ignored."""
    saved = []
    for module in modules:
        for m in module.modules() if isinstance(module, nn.Module) else ():
            params = {n: (p, p.data, p.grad, p.requires_grad)
                      for n, p in m._parameters.items() if p is not None}  # fmt: skip
            saved.append((m, m.training, params, dict(m._buffers)))
    try:
        yield
    finally:
        for m, training, params, buffers in saved:
            m.training = training
            for n, (p, data, grad, requires_grad) in params.items():
                m._parameters[n] = p
                p.data = data
                p.grad = grad
                p.requires_grad_(requires_grad)
            m._buffers.update(buffers)


def _run(name: str, model, unlabelled, labelled, budget: int | None, kw: dict) -> Selection:
    check_device(kw["device"], "device")  # before the model moves: a clear error, not torch's
    keys = ("prediction", "embedding", "pooling", "loss", "features")
    contract = _contract(model, *(kw.pop(k) for k in keys))
    head = kw.pop("head")
    options = {k: kw.pop(k) for k in ("method", "params", "n_exact", "n_probes")}
    options |= {k: kw.pop(k) for k in ("batch_size", "device", "seed", "sigma")}
    strategy = make_strategy(name, **kw)
    rng = np.random.default_rng(options["seed"])
    with as_found(contract.model, head):  # scored in eval mode on device; put back after
        contract.model.eval()
        inputs = _inputs(strategy, contract, unlabelled, labelled, head, options)
        if budget is None:
            scores, details = strategy.explain(inputs, rng)
            return Selection(strategy.name, np.asarray(scores, np.float64), dict(details))
        query, scores, details = strategy.select_explained(inputs, budget, rng)
    return Selection(strategy.name, np.asarray(scores, np.float64), dict(details), query)


def _options(
    model: nn.Module,
    *,
    loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    prediction: None | str | int | Callable = None,
    embedding: str | Callable | None = None,
    pooling: str = "mean",
    features: tuple[str, ...] = (),
    head: nn.Module | None = None,
    method: str = "auto",
    params: str = "all",
    n_exact: int = DEFAULT_N_EXACT,
    n_probes: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    sigma: float = 1.0,
    **hyperparameters: Any,
) -> dict:
    """The keyword arguments of :func:`score` and :func:`select`, with their defaults."""
    return {k: v for k, v in locals().items() if k not in ("model", "hyperparameters")} | (
        hyperparameters
    )


def score(strategy: str, model, unlabelled, labelled=None, **options: Any) -> Scores:
    """Score every unlabelled input with ``strategy`` (``random``, ``coreset``, ``egl++``,
    ``multipeak``, ``learning-loss``); higher means more wanted.

    Parameters
    ----------
    strategy : str
    model : nn.Module, ModelContract or StackedHourglass
    unlabelled : tensor (U, ...) or Dataset of inputs
    labelled : (inputs, targets) tensors, or a Dataset of (input, target) pairs
    loss : callable, optional
        ``loss(prediction (B, ...), target (B, ...)) -> (B,)``, per example (default MSE).
    prediction : None, key, index or callable
        Which output is the prediction (None: the output tensor itself).
    embedding : str or callable
        A submodule's name (its output, ``pooling="mean"`` global-average-pooled or
        ``"flatten"``), or ``(model, x) -> (B, C)``; Core-set and EGL++ need it.
    features, head : Learning Loss's tapped submodules and its trained head.
    method : "auto" (default: "hooks" where every parameter belongs to a layer call, else
        "vmap"), "vmap" (any model torch.func runs) or "hooks" (per-layer norms, the rest by
        per-example gradients of its modules: :mod:`eglpp.gradnorm.hooks`)
    params : "all", "conv_linear" or "last": the parameters of the gradient norms
    n_exact, n_probes : EGL++ ``estimator="approx"``'s exact neighbours and probes
    batch_size, device, seed
        ``device`` (cpu, cuda, cuda:N) is checked first; the model and ``head`` are moved there
        and into eval mode while they score, and put back as found after (:func:`as_found`).
    sigma : float
        σ (heatmap px) of the Gaussian labels made of a pose data set's joints for a heatmap
        prediction (the labels of a pose labelled set: :mod:`eglpp.scoring.labels`).
    **hyperparameters : the strategy's (``k=30, perplexity=20, estimator="approx"``, …)
    """
    return _run(strategy, model, unlabelled, labelled, None, _options(model, **options))


def select(strategy: str, model, unlabelled, labelled=None, *, budget: int, **options: Any):
    """:func:`score`, then the ``budget`` inputs to label: a :class:`Selection` whose
    ``query_indices`` are positions in ``unlabelled``, best first (Core-set: greedy)."""
    return _run(strategy, model, unlabelled, labelled, budget, _options(model, **options))
