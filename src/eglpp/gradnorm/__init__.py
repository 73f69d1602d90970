"""Per-example squared gradient norms ``‖∇θ ℓ(y_k, f(x_b))‖²`` of any model, for K targets each.

The loss is always an argument (``loss_fn``); nothing here knows a model or its loss.

- :mod:`~eglpp.gradnorm.base`: settings (``GradNormConfig``), the loss contract, parameters,
  cotangents;
- :mod:`~eglpp.gradnorm.exact`: ``per_example_gradnorms``, one linearisation per image and the
  K vector-Jacobian products vmapped (torch.func), or per-layer norms (``method="hooks"``,
  :mod:`~eglpp.gradnorm.hooks`); ``method="auto"`` (the default) picks per-layer norms where
  :mod:`~eglpp.gradnorm.plan` finds every parameter in a layer call;
- :mod:`~eglpp.gradnorm.layers`: the per-layer rules (conv, grouped/depthwise conv, linear,
  transposed conv, batch/group/layer norm, embedding); :mod:`~eglpp.gradnorm.local`: the
  per-example gradient of any other module alone (attention, a user's own layer);
- :mod:`~eglpp.gradnorm.approx`: the p-weighted EGL++ sum with fewer than K products;
- :mod:`~eglpp.gradnorm.pool`: each unlabelled image against its neighbours' labels, batched;
- :mod:`~eglpp.gradnorm.sharded`: the pool-level functions with rows split across processes.
"""
