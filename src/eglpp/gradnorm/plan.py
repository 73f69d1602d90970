"""Which parameters get per-layer norms, which get per-example gradients, and ``method="auto"``.

One recorded forward (every module's inputs and outputs, through forward hooks) assigns each
selected parameter to one of

- a **layer** rule (:mod:`eglpp.gradnorm.layers`): its module ran exactly once, on a batch-first
  input, and has a rule;
- a **local** per-example gradient (:mod:`eglpp.gradnorm.local`): the nearest module, the
  parameter's own or an ancestor, that ran exactly once on batch-first inputs (batch second for
  an ``nn.MultiheadAttention`` with ``batch_first=False``) with no tensor keyword arguments;
  its per-example gradient is taken with torch.func on that module alone (GroupNorm-like layers
  of a user's own, ``nn.MultiheadAttention`` with its projections, a layer run twice inside one
  block);
- the **whole model** (the root module as the "local" module): a parameter used outside any
  module call (``self.position`` added in ``forward``), tied between modules, or in a module
  run more than once.

Batch-firstness is read from how the shapes scale: the plan's forward runs on one image and
the hooks path's on the batch, and a module counts only if its leading (batch) dim is 1 in the
first and B in the second. ``method="auto"`` takes per-layer norms (``"hooks"``) unless a
parameter needs the whole model, where the vectorised path (``"vmap"``) does the same work in
one pass, or a batch norm has no running statistics (then only ``"vmap"`` defines it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves

from eglpp.gradnorm.base import PredictionFn, eval_mode, prediction_of, select_parameters
from eglpp.gradnorm.layers import BATCH_NORM, rule_problem

__all__ = [
    "Call",
    "Plan",
    "plan_gradnorms",
    "record_calls",
    "batch_dim",
    "batch_first",
    "resolve_method",
]


@dataclass
class Call:
    """One module call: its inputs, keyword arguments and output leaves."""

    args: tuple
    kwargs: dict
    outputs: list = field(default_factory=list)  # the output's tensor leaves


@dataclass(frozen=True)
class Plan:
    """Module names and what covers their parameters (see the module docstring)."""

    layers: tuple[str, ...]  # modules whose own parameters have a per-layer rule
    local: tuple[tuple[str, tuple[str, ...]], ...]  # (module, parameter names inside it)
    problem: str | None = None  # why per-layer norms are undefined here (vmap only)

    @property
    def method(self) -> str:
        """What ``method="auto"`` runs: ``"hooks"``, or ``"vmap"`` where a parameter needs the
        whole model (or per-layer norms are undefined)."""
        return "vmap" if self.problem or any(m == "" for m, _ in self.local) else "hooks"

    def describe(self) -> str:
        """One line: the choice and why."""
        if self.problem:
            return f"vmap ({self.problem})"
        rest = [m for m, _ in self.local]
        if "" in rest:
            names = dict(self.local)[""]
            return f"vmap (parameters outside any module call: {', '.join(names[:3])})"
        extra = f", per-example gradients of {len(rest)} other modules" if rest else ""
        return f"hooks (per-layer norms of {len(self.layers)} layers{extra})"


def batch_dim(m: nn.Module) -> int:
    """The batch dim of a module's inputs and outputs: 1 for a sequence-first attention."""
    return 1 if isinstance(m, nn.MultiheadAttention) and not m.batch_first else 0


def record_calls(
    model: nn.Module,
    images: Tensor,
    prediction: PredictionFn | None,
    keep: set[str] | None = None,
) -> tuple[Tensor, dict[str, list[Call]]]:
    """The prediction of one eval-mode forward with a graph, and the calls of every module (or
    of those named in ``keep``: the others' inputs and outputs are not held)."""
    calls: dict[str, list[Call]] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(m, args, kwargs, output):
        if type(m) in BATCH_NORM and m.track_running_stats and len(args) == 1:
            output = _affine(m, args[0])  # the same values, a backward vmap batches well
        if keep is None or names[m] in keep:
            calls.setdefault(names[m], []).append(Call(args, kwargs, tree_leaves(output)))
        return output

    handles = [
        m.register_forward_hook(hook, with_kwargs=True)
        for m, n in names.items()
        if keep is None or n in keep or type(m) in BATCH_NORM
    ]
    try:
        with eval_mode(model), torch.enable_grad():
            pred = prediction_of(model(images), prediction)
    finally:
        for h in handles:
            h.remove()
    return pred, calls


def _affine(m: nn.Module, x: Tensor) -> Tensor:
    """An eval-mode batch norm as one multiply-add: ``x · γ/√(σ² + ε) + (β − μ γ/√(σ² + ε))``
    (``torch.autograd.grad(..., is_grads_batched=True)`` has no batched rule for batch norm's
    own backward and loops over the cotangents)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    scale = torch.rsqrt(m.running_var + m.eps)
    shift = -m.running_mean * scale
    if m.weight is not None:
        scale, shift = scale * m.weight, shift * m.weight
    if m.bias is not None:
        shift = shift + m.bias
    return torch.addcmul(shift.view(shape), x, scale.view(shape))


def batch_first(m: nn.Module, calls: list[Call] | None, n: int) -> bool:
    """Ran once, on at least one positional tensor, every positional tensor input and output
    leaf with ``n`` rows at its batch dim, no tensor keyword argument."""
    if not calls or len(calls) != 1:
        return False
    c, d = calls[0], batch_dim(m)
    tensors = [a for a in c.args if isinstance(a, Tensor)] + [
        o for o in c.outputs if isinstance(o, Tensor)
    ]
    if not any(isinstance(a, Tensor) for a in c.args) or any(
        isinstance(v, Tensor) for v in tree_leaves(c.kwargs)
    ):
        return False
    return all(t.dim() > d and t.shape[d] == n for t in tensors) and not _self_feeding(c)


def _self_feeding(c: Call) -> bool:
    """Whether one output of the call is computed from another (then the gradients with
    respect to both count that path twice; the module's parent is differentiated instead)."""
    outs = [o for o in c.outputs if isinstance(o, Tensor) and o.grad_fn is not None]
    if len(outs) < 2:
        return False
    stop = {a.grad_fn for a in c.args if isinstance(a, Tensor) and a.grad_fn is not None}
    ends = {o.grad_fn for o in outs}
    for o in outs:
        seen, todo = set(), [f for f, _ in o.grad_fn.next_functions if f is not None]
        while todo:
            f = todo.pop()
            if f in ends:
                return True
            if f not in seen and f not in stop:
                seen.add(f)
                todo.extend(n for n, _ in f.next_functions if n is not None)
    return False


def plan_gradnorms(
    model: nn.Module, images: Tensor, params: str, prediction: PredictionFn | None = None
) -> Plan:
    """The plan of per-layer norms for ``model`` (one forward on ``images[:1]``)."""
    names = select_parameters(model, params, images)
    _, calls = record_calls(model, images[:1], prediction)
    return _assign(model, names, calls, params)


def _assign(model: nn.Module, names: list[str], calls: dict[str, list[Call]], params: str) -> Plan:
    modules = dict(model.named_modules())
    seen: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        seen[id(p)] = seen.get(id(p), 0) + 1
    tied = {n for n, p in model.named_parameters() if seen[id(p)] > 1}
    layers: list[str] = []
    local: dict[str, list[str]] = {}
    for name in names:
        owner, _, leaf = name.rpartition(".")
        m = modules[owner]
        problem = rule_problem(m)
        if problem == "has no running statistics" and params == "all":
            return Plan((), (), f"{owner} ({type(m).__name__}) has no running statistics")
        if name not in tied and problem is None and batch_first(m, calls.get(owner), 1):
            if owner not in layers:
                layers.append(owner)
            continue
        shared = name in tied or len(calls.get(owner, ())) > 1  # maybe used outside its parent
        holder = "" if shared else owner
        while holder and not batch_first(modules[holder], calls.get(holder), 1):
            holder = holder.rpartition(".")[0]
        local.setdefault(holder, []).append(name[len(holder) + 1 :] if holder else name)
    return Plan(tuple(layers), tuple((m, tuple(v)) for m, v in local.items()))


def resolve_method(
    model: nn.Module, images: Tensor, method: str, params: str, prediction: PredictionFn | None
) -> tuple[str, Plan | None]:
    """The concrete method (``"vmap"`` or ``"hooks"``) for ``method`` and the plan behind it
    (None where no plan was needed: ``"vmap"``, or parameters that hooks do not select)."""
    if method == "vmap" or (method == "auto" and params not in ("all", "conv_linear")):
        return "vmap", None
    plan = plan_gradnorms(model, images, params, prediction)
    return (plan.method if method == "auto" else method), plan


def describe(method: str, requested: str, plan: Plan | None) -> str:
    """What ran and why, in one line (``GradNormConfig.report``)."""
    if plan is None:
        why = (
            "asked for" if requested == "vmap" else "parameters per layer only for all/conv_linear"
        )
        return f"vmap ({why})"
    text = plan.describe()
    return text if method == plan.method else f"hooks (asked for; auto would run {text})"
