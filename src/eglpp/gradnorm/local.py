"""Per-example squared gradient norms of one module's parameters, from its recorded call.

Where a module has no per-layer rule (:mod:`eglpp.gradnorm.layers`), its parameters' per-example
gradient is still local: with the module's input ``a_b`` of example b and the gradients
``g_kb`` of the K losses with respect to its output (from the one batched backward of
:mod:`eglpp.gradnorm.hooks`), ``∇_θ ℓ_kb = J_θ(a_b)ᵀ g_kb``, the vector-Jacobian product of the
module alone. It is taken with torch.func: one linearisation of the module per example, its
K products vmapped, examples vmapped in chunks that hold at most ``max_elements`` gradient
entries. The whole model is the module of last resort (the root, ``""``, whose output
gradient is the loss cotangent itself).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, vjp, vmap
from torch.utils._pytree import tree_leaves

from eglpp.gradnorm.plan import Call, batch_dim

__all__ = ["local_norms"]


def local_norms(
    m: nn.Module,
    names: tuple[str, ...],
    call: Call,
    grads: list[Tensor | None],
    max_elements: int,
    read: Callable[[object], Tensor] | None = None,
) -> Tensor | None:
    """(K, B) squared norms of the per-example gradients of ``m``'s parameters ``names``
    (None where no gradient reaches the module).

    ``call`` is ``m``'s recorded call (batch-first inputs, or batch second for a
    sequence-first attention); ``grads`` holds, for each of its output leaves, the K gradients
    (K, *leaf.shape) of the losses with respect to it, or None where a leaf got none. With
    ``read`` (the whole model), the one output is ``read(model output)``, the prediction.
    """
    d = batch_dim(m)
    own = dict(m.named_parameters())
    params = {n: own[n].detach() for n in names}
    fixed = {n: t.detach() for n, t in own.items() if n not in params}  # constants here
    wanted = [i for i, g in enumerate(grads) if g is not None]
    if not wanted:  # no loss reaches the module's output: zero gradients
        return None
    K = grads[wanted[0]].shape[0]
    slots = [i for i, a in enumerate(call.args) if isinstance(a, Tensor)]
    xs = [call.args[i].detach() for i in slots]
    gs = [grads[i] for i in wanted]
    B = xs[0].shape[d]

    def one(p: dict[str, Tensor], *x: Tensor) -> tuple[Tensor, ...]:
        args = list(call.args)
        for i, xi in zip(slots, x, strict=True):
            args[i] = xi.unsqueeze(d)
        out = functional_call(m, (p, fixed), tuple(args), call.kwargs)
        leaves = [read(out)] if read is not None else tree_leaves(out)
        return tuple(leaves[i].squeeze(d) for i in wanted)

    def per_example(*xg: Tensor) -> Tensor:
        x, g = xg[: len(xs)], xg[len(xs) :]
        _, vjp_fn = vjp(lambda p: one(p, *x), params)
        (per,) = vmap(vjp_fn)(tuple(g))  # {name: (K, *shape)}
        return sum(v.pow(2).flatten(1).sum(1) for v in per.values())  # (K,)

    n_params = sum(p.numel() for p in params.values())
    step = max(1, min(B, max_elements // max(K * n_params, 1)))
    batched = vmap(per_example, in_dims=(d,) * len(xs) + (d + 1,) * len(gs))
    out = [
        batched(*(x.narrow(d, s, min(step, B - s)) for x in xs),
                *(g.narrow(d + 1, s, min(step, B - s)) for g in gs))
        for s in range(0, B, step)
    ]  # fmt: skip
    return torch.cat(out).T  # (K, B)
