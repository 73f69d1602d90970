"""The model contract: what eglpp needs to know about a network to score a pool with it.

Any ``torch.nn.Module`` will do; a :class:`ModelContract` says

- which output is the **prediction** the loss is taken of: the output itself (None), a key of
  a dict output, an attribute of a NamedTuple output or an index of a tuple output (``"heatmaps"``,
  ``0``), or a callable ``output -> Tensor``;
- where the **embedding** comes from: the name of a submodule whose output a forward hook
  captures (global-average-pooled over the dimensions after the channels, ``pooling="mean"``,
  or flattened, ``pooling="flatten"``), or a callable ``(model, x) -> (B, C)``;
- the per-example training **loss** ``loss(prediction, target) -> (B,)`` (None: mean squared
  error); a mask for missing values is the loss's business;
- for Learning Loss, the **features** its head taps: submodule names (an output that is a list
  of tensors counts as several).

The gradient norms run the model under ``torch.func`` (``eglpp.gradnorm``) with grad enabled,
so ``nn.TransformerEncoderLayer``'s inference fast path (eval mode, no grad) is taken only in the
no-grad passes that read embeddings and predictions, never where gradients are taken (the small
ViT of ``tests/foreign`` checks its gradient norms against an autograd loop).

eglpp's own hourglass is one such contract (:func:`hourglass_contract`): its heatmaps, the
last stack's feature layer as embedding, its last hourglass's scales as features; every scoring
path (``eglpp.score``, the experiment loop, ``eglpp select``) goes through a contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from eglpp.gradnorm.base import LossFn
from eglpp.pose.heatmaps import heatmap_loss
from eglpp.pose.hourglass import StackedHourglass

__all__ = ["ModelContract", "hourglass_contract", "as_contract", "input_of", "mse_per_example"]

Selector = None | str | int | Callable[[Any], Tensor]


def mse_per_example(prediction: Tensor, target: Tensor) -> Tensor:
    """The default loss: mean squared error of each example, (B,)."""
    return (prediction - target).pow(2).flatten(1).mean(1)


def input_of(item: Any) -> Tensor:
    """The input of a data item or batch: a tensor, a dict's ``"image"``, a pair's first."""
    if isinstance(item, Mapping):
        return item["image"]
    if isinstance(item, (tuple, list)):
        return item[0]
    return torch.as_tensor(item)


@dataclass
class ModelContract:
    """A model and how to read its prediction, embedding, loss and features (module docstring).

    ``flags`` names the arguments in error messages (``eglpp select`` maps ``"prediction"`` to
    ``"--prediction"``); ``weighted_loss`` is a loss of (prediction, target, weight) for one
    example (``eglpp.gradnorm``'s ``LossFn``), used instead of ``loss`` where labels carry
    weights (pose data sets: the joints' visibility).
    """

    model: nn.Module
    prediction: Selector = None
    embedding: str | Callable[[nn.Module, Tensor], Tensor] | None = None
    pooling: str = "mean"
    loss: Callable[[Tensor, Tensor], Tensor] | None = None
    features: tuple[str, ...] = ()
    weighted_loss: LossFn | None = None
    flags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise TypeError(
                f"{self.flag('model')}: expected a torch.nn.Module, got {type(self.model).__name__}"
            )
        if self.pooling not in ("mean", "flatten"):
            raise ValueError(f"pooling must be 'mean' or 'flatten', got {self.pooling!r}")
        if self.loss is not None and not callable(self.loss):
            raise TypeError(f"{self.flag('loss')}: expected a callable (prediction, target)")
        self.features = tuple(self.features)
        names = dict(self.model.named_modules())
        wanted = [self.embedding] if isinstance(self.embedding, str) else []
        for name in wanted + list(self.features):
            if name not in names:
                what = "embedding" if name == self.embedding else "features"
                shown = [n for n in names if n][:80]
                raise ValueError(
                    f"{self.flag(what)} {name!r}: the model has no such submodule; its modules: "
                    + ", ".join(shown) + (", …" if len(names) > 81 else "")
                )  # fmt: skip

    def flag(self, argument: str) -> str:
        """How ``argument`` is named in messages (``--embedding`` for ``eglpp select``)."""
        return self.flags.get(argument, argument)

    def prediction_of(self, output: Any) -> Tensor:
        """The prediction tensor of a model output (the selector of the module docstring)."""
        sel = self.prediction
        if callable(sel):
            pred = sel(output)
        elif sel is None:
            pred = output
        elif isinstance(output, Mapping):
            if sel not in output:
                raise ValueError(
                    f"{self.flag('prediction')} {sel!r}: the model's output has no such key; "
                    f"its keys: {', '.join(map(repr, output))}"
                )
            pred = output[sel]
        elif isinstance(sel, str) and hasattr(output, sel):
            pred = getattr(output, sel)
        elif isinstance(sel, int) and isinstance(output, (tuple, list)) and sel < len(output):
            pred = output[sel]
        else:
            raise ValueError(
                f"{self.flag('prediction')} {sel!r}: not found in the model's output "
                f"({type(output).__name__})"
            )
        if not isinstance(pred, Tensor):
            raise TypeError(
                f"{self.flag('prediction')}: the prediction must be a Tensor, got "
                f"{type(pred).__name__}; name the output tensor (a key, an index or a callable)"
            )
        return pred

    def gradnorm_loss(self) -> LossFn:
        """The one-example loss ``eglpp.gradnorm`` differentiates: ``weighted_loss``, or
        ``loss`` (default MSE) summed over the example's batch of one (the weight unused)."""
        if self.weighted_loss is not None:
            return self.weighted_loss
        loss = self.loss or mse_per_example

        def one(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
            return loss(pred, target).sum()

        return one

    @contextmanager
    def capturing(self, want: frozenset[str]) -> Iterator[dict[str, list]]:
        """Forward hooks recording the ``"embedding"`` submodule's and the ``"features"``
        submodules' outputs of the forward passes run inside (each a list per call)."""
        names = dict(self.model.named_modules())
        taps: dict[str, list[str]] = {}
        if "embedding" in want and isinstance(self.embedding, str):
            taps["embedding"] = [self.embedding]
        if "features" in want:
            taps["features"] = list(self.features)
        seen: dict[str, list] = {key: [] for key in taps}
        handles = []
        for key, modules in taps.items():
            for name in modules:

                def hook(module, inputs, output, key=key):
                    seen[key].append(output)

                handles.append(names[name].register_forward_hook(hook))
        try:
            yield seen
        finally:
            for h in handles:
                h.remove()

    def outputs(self, x: Tensor, want: frozenset[str]) -> dict[str, Any]:
        """One forward of a batch: ``"prediction"`` (B, ...), and, if asked, ``"embedding"``
        (B, C) and ``"features"`` (a tuple of tensors)."""
        with self.capturing(want) as seen:
            out = self.model(x)
        result: dict[str, Any] = {"prediction": self.prediction_of(out)}
        if "embedding" in want:
            result["embedding"] = self._embedding(x, seen.get("embedding", []))
        if "features" in want:
            result["features"] = tuple(t for output in seen["features"] for t in _tensors(output))
        return result

    def _embedding(self, x: Tensor, seen: list) -> Tensor:
        if self.embedding is None:
            raise ValueError(
                f"{self.flag('embedding')}: this strategy needs embeddings; name a submodule "
                "whose output is the representation, or give a callable (model, x) -> (B, C)"
            )
        if callable(self.embedding):
            z = self.embedding(self.model, x)
        else:
            if len(seen) != 1 or not isinstance(seen[0], Tensor):
                raise ValueError(
                    f"{self.flag('embedding')} {self.embedding!r}: the submodule must run once "
                    f"per forward and output a tensor (ran {len(seen)} times)"
                )
            z = seen[0]
            if z.dim() > 2:
                z = z.mean(dim=tuple(range(2, z.dim()))) if self.pooling == "mean" else z.flatten(1)
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[0] != x.shape[0]:
            raise ValueError(
                f"{self.flag('embedding')}: expected embeddings (B={x.shape[0]}, C), got "
                f"{tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__}"
            )
        return z


def _tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for o in output for t in _tensors(o)]
    raise TypeError(f"features: a tapped submodule output a {type(output).__name__}, not tensors")


def hourglass_contract(model: StackedHourglass) -> ModelContract:
    """eglpp's stacked hourglass as a contract: every stack's heatmaps (B, S, J, h, w) as the
    prediction, the last stack's feature layer (global-average-pooled: ``HourglassOutput.
    embedding``) as embedding, the last hourglass's scales as Learning Loss features, and the
    training loss :func:`~eglpp.pose.heatmaps.heatmap_loss` with the joints' visibility."""
    last = f"stacks.{len(model.stacks) - 1}"
    return ModelContract(
        model,
        prediction="heatmaps",
        embedding=f"{last}.linear",
        features=(f"{last}.hourglass",),
        weighted_loss=heatmap_loss,
    )


def as_contract(model: nn.Module | ModelContract) -> ModelContract:
    """A contract as it is, a :class:`StackedHourglass` as :func:`hourglass_contract`."""
    if isinstance(model, ModelContract):
        return model
    if isinstance(model, StackedHourglass):
        return hourglass_contract(model)
    raise TypeError(
        f"expected a ModelContract or a StackedHourglass, got {type(model).__name__}: describe "
        "another model with eglpp.scoring.contract.ModelContract (prediction, embedding, loss)"
    )
