"""What the gradient-norm paths share: settings, the loss contract, parameters, cotangents.

A ``LossFn`` is ``loss_fn(pred (1, ...), target (1, ...), weight (1, ...)) -> scalar``, the
model's training loss of one example (for eglpp's hourglass: heatmaps (1, S, J, h, w), their
labels (1, J, h, w) and joint weights (1, J)); this package knows no model and always takes it
as an argument. Which tensor of a model's output is the prediction is
``GradNormConfig.prediction`` (by default the output itself, or its ``.heatmaps``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

__all__ = [
    "LossFn",
    "GradNormConfig",
    "PredictionFn",
    "heatmaps_of",
    "prediction_of",
    "eval_mode",
    "select_parameters",
    "functional_forward",
    "pair_cotangents",
    "memory_bytes",
]

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]
#: ``prediction(model_output) -> Tensor (B, ...)``: the output the loss is taken of.
PredictionFn = Callable[[object], Tensor]


@dataclass(frozen=True)
class GradNormConfig:
    """How the squared gradient norms are computed."""

    params: str | tuple[str, ...] = "all"  # "all", "conv_linear", "last", or name prefixes
    k_chunk: int | None = None  # neighbours per vectorised chunk; None: from max_grad_elements
    max_grad_elements: int | None = None  # per-example gradient entries (vmap) or layer-
    # output gradient entries (hooks) held at once; None: max_memory / 16 (4-byte entries, 4×
    # for what is held beside them), or 2**27 (512 MiB in fp32) on the CPU, on CUDA what a
    # quarter of the device's free memory holds (at least 2**27)
    method: str = "auto"  # "auto" (hooks where no parameter needs the whole model, else vmap:
    # eglpp.gradnorm.plan), "vmap" (torch.func) or "hooks" (eglpp.gradnorm.hooks, per layer)
    max_memory: int | str | None = None  # bytes (or "8GiB", "512MiB") the chunks of (image,
    # neighbour) pairs may take; None: see max_grad_elements
    report: Callable[[str], None] | None = None  # told, on each call, which method ran and why
    # (``Plan.describe``), e.g. to log and record what "auto" chose
    prediction: PredictionFn | None = None  # the prediction of a model output; None:
    # heatmaps_of (the output tensor, or its .heatmaps, read as (B, S, J, h, w))

    def __post_init__(self) -> None:
        if isinstance(self.params, str) and self.params not in ("all", "conv_linear", "last"):
            raise ValueError(
                "GradNormConfig.params must be 'all', 'conv_linear', 'last' or a tuple of "
                f"parameter-name prefixes, got {self.params!r}"
            )
        if self.k_chunk is not None and self.k_chunk < 1:
            raise ValueError(f"GradNormConfig.k_chunk must be positive, got {self.k_chunk}")
        if self.method not in ("auto", "vmap", "hooks"):
            raise ValueError(
                f"GradNormConfig.method must be 'auto', 'vmap' or 'hooks', got {self.method!r}"
            )
        if self.max_memory is not None:
            object.__setattr__(self, "max_memory", memory_bytes(self.max_memory, "max_memory"))
        if self.method == "hooks" and self.params not in ("all", "conv_linear"):
            raise ValueError("GradNormConfig.method='hooks' supports params 'all' or 'conv_linear'")
        if self.report is not None and not callable(self.report):
            raise TypeError("GradNormConfig.report must be callable (description -> None)")
        if self.prediction is not None and not callable(self.prediction):
            raise TypeError("GradNormConfig.prediction must be callable (model output -> Tensor)")
        if self.max_grad_elements is not None and self.max_grad_elements < 1:
            raise ValueError(
                f"GradNormConfig.max_grad_elements must be positive, got {self.max_grad_elements}"
            )

    def budget(self, device: str | torch.device = "cpu") -> int:
        """Gradient entries that may be held at once on ``device`` (``max_grad_elements``)."""
        if self.max_grad_elements is not None:
            return self.max_grad_elements
        if self.max_memory is not None:
            return max(1, self.max_memory // 16)
        device = torch.device(device)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return max(2**27, free // 16)  # a quarter of the free bytes, in 4-byte entries
        return 2**27

    def chunks(
        self, n_images: int, n_targets: int, n_params: int, device: str | torch.device = "cpu"
    ) -> tuple[int, int]:
        """(images, targets) per vectorised chunk so that at most :meth:`budget` per-example
        gradient entries (images × targets × parameters) exist at once."""
        budget = self.budget(device)
        k = self.k_chunk or max(1, min(n_targets, budget // max(n_params, 1)))
        b = max(1, min(n_images, budget // max(k * n_params, 1)))
        return b, k


def heatmaps_of(output: object) -> Tensor:
    """The (B, S, J, h, w) heatmaps of a model output: a tensor or anything with ``.heatmaps``.

    A (B, J, h, w) tensor is read as one stack.
    """
    hm = output.heatmaps if hasattr(output, "heatmaps") else output
    if not isinstance(hm, Tensor):
        raise TypeError(
            f"model output must be a Tensor or have .heatmaps, got {type(output).__name__}"
        )
    if hm.dim() == 4:
        hm = hm[:, None]
    if hm.dim() != 5:
        raise ValueError(f"model heatmaps must be (B, S, J, h, w), got {tuple(hm.shape)}")
    return hm


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode, restoring each one's own flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def _last_parameterised_module(model: nn.Module, example: Tensor) -> str:
    order: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    handles = [
        m.register_forward_hook(lambda mod, i, o: order.append(names[mod]))
        for m in model.modules()
        if any(True for _ in m.parameters(recurse=False))
    ]
    try:
        with torch.no_grad(), eval_mode(model):
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError("the model has no parameterised module that runs in forward")
    return order[-1]


def _owner(param_name: str) -> str:
    """Name of the module that holds a parameter ("" for the root module)."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else ""


def select_parameters(
    model: nn.Module, params: str | Sequence[str], example: Tensor | None = None
) -> list[str]:
    """Names of the trainable parameters covered by ``params`` (see the module docstring)."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if params == "all":
        chosen = trainable
    elif params == "conv_linear":
        kinds = (
            nn.Conv1d,
            nn.Conv2d,
            nn.Conv3d,
            nn.Linear,
            nn.ConvTranspose1d,
            nn.ConvTranspose2d,
            nn.ConvTranspose3d,
        )
        owners = {n for n, m in model.named_modules() if isinstance(m, kinds)}
        chosen = [n for n in trainable if _owner(n) in owners]
    elif params == "last":
        if example is None:
            raise ValueError("params='last' needs an example input to trace the forward order")
        last = _last_parameterised_module(model, example)
        chosen = [n for n in trainable if _owner(n) == last]
    else:
        chosen = [n for n in trainable if any(n.startswith(p) for p in params)]
    if not chosen:
        raise ValueError(f"params={params!r} selects no trainable parameter of the model")
    return chosen


def prediction_of(output: object, prediction: PredictionFn | None) -> Tensor:
    """``prediction(output)``, or :func:`heatmaps_of` when ``prediction`` is None."""
    if prediction is None:
        return heatmaps_of(output)
    pred = prediction(output)
    if not isinstance(pred, Tensor):
        raise TypeError(f"the model's prediction must be a Tensor, got {type(pred).__name__}")
    return pred


def functional_forward(
    model: nn.Module,
    example: Tensor,
    params: str | Sequence[str],
    prediction: PredictionFn | None = None,
) -> tuple[dict[str, Tensor], Callable[[dict[str, Tensor], Tensor], Tensor]]:
    """The selected parameters and ``forward_one(params, input (...)) -> (1, ...)``, the
    prediction (:func:`prediction_of`) of one input."""
    names = set(select_parameters(model, params, example))
    chosen = {n: p.detach() for n, p in model.named_parameters() if n in names}
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in names}
    fixed.update(dict(model.named_buffers()))

    def forward_one(p: dict[str, Tensor], image: Tensor) -> Tensor:
        return prediction_of(functional_call(model, (p, fixed), (image[None],)), prediction)

    return chosen, forward_one


def pair_cotangents(loss_fn: LossFn, heatmaps: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """``∂ℓ(h_b, y_bk)/∂h_b`` for K targets of each of B predictions: (B, K, *heatmaps[0].shape).

    The (image, target) pairs are flattened into one ``vmap`` level: torch.func cannot take
    ``grad`` of ``mse_loss``, ``smooth_l1_loss`` or ``huber_loss`` under two nested vmaps.
    """
    B, K = targets.shape[:2]
    shape = heatmaps.shape[1:]
    h = heatmaps[:, None].expand(B, K, *shape).reshape(B * K, *shape)

    def one(hk: Tensor, t: Tensor, w: Tensor) -> Tensor:
        return grad(lambda x: loss_fn(x[None], t[None], w[None]))(hk)

    c = vmap(one)(
        h, targets.reshape(B * K, *targets.shape[2:]), weights.reshape(B * K, *weights.shape[2:])
    )
    return c.reshape(B, K, *shape)


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "k": 2**10, "m": 2**20, "g": 2**30}  # fmt: skip


def memory_bytes(value: int | str, what: str = "max_memory") -> int:
    """Bytes of ``value``: an integer, or a number with a unit (``"8GiB"``, ``"512MB"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, ""
    else:
        text = str(value).strip().lower().replace(" ", "")
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        number, unit = digits, text[len(digits) :]
    try:
        size = int(float(number) * _UNITS[unit])
    except (KeyError, ValueError):
        size = 0
    if size < 1:
        raise ValueError(
            f"{what} must be a positive number of bytes or a size such as '8GiB' or '512MiB', "
            f"got {value!r}"
        )
    return size
