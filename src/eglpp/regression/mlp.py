"""Heteroscedastic network members in PyTorch (Eq. 8) and exact per-example gradient norms.

Each member is a two-hidden-layer tanh network with a mean head and a log-variance head,
trained with the Gaussian negative log-likelihood

.. math::
    \\ell = \\frac{(y - \\mu(x))^2}{2\\sigma^2(x)} + \\tfrac12 \\log \\sigma^2(x)      (Eq. 8)

(after a warm-up of ``mlp_epochs // 4`` steps on the squared error of the mean head, which
keeps the variance head from collapsing on a handful of points). The K members are trained at
once as one batched network (weights with a leading member axis), each on its own bootstrap.
The main model ``f`` is the same network (K = 1) trained on all labelled data; its
``‖∇_θ f(x)‖²`` (over all parameters, mean output) is computed per example with
``torch.func.vmap(torch.func.grad(...))`` (:func:`per_example_grad_sq`).

Inputs and targets are standardised with the labelled set's statistics inside ``fit``; the
predictive is returned in target units (μ = m + s·g, σ² = s²·exp(log σ̃²), ‖∇f‖² = s²‖∇g‖²).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.func import grad, vmap

from eglpp.regression.predictive import EnsembleConfig, Predictive, bootstrap_indices

__all__ = ["init_params", "forward", "per_example_grad_sq", "train_members", "MLPEnsemble"]

Params = dict[str, torch.Tensor]


def init_params(K: int, D: int, H: int, generator: torch.Generator) -> Params:
    """K members' weights, each layer uniform in ±1/sqrt(fan_in) (PyTorch's Linear default)."""

    def u(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound

    return {
        "w1": u((K, D, H), D),
        "b1": u((K, H), D),
        "w2": u((K, H, H), H),
        "b2": u((K, H), H),
        "w3": u((K, H, 2), H),
        "b3": u((K, 2), H),
    }


def forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """(K, N, D) inputs → (K, N, 2) outputs: [..., 0] the mean, [..., 1] the log-variance."""
    h = torch.tanh(torch.einsum("knd,kdh->knh", x, params["w1"]) + params["b1"][:, None])
    h = torch.tanh(torch.einsum("knd,kdh->knh", h, params["w2"]) + params["b2"][:, None])
    return torch.einsum("knd,kdh->knh", h, params["w3"]) + params["b3"][:, None]


def per_example_grad_sq(params: Params, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Exact ‖∇_θ g(x_i)‖² of the mean output of a K = 1 network, for each row of x (N, D).

    ``torch.func.grad`` of the scalar mean output, vectorised over rows with ``vmap`` and
    evaluated in chunks of ``chunk`` rows (memory ``chunk × n_parameters``).
    """

    def mean_out(p: Params, row: torch.Tensor) -> torch.Tensor:
        return forward(p, row[None, None, :])[0, 0, 0]

    per_row = vmap(grad(mean_out), in_dims=(None, 0))
    out = []
    for start in range(0, x.shape[0], chunk):
        g = per_row(params, x[start : start + chunk])
        out.append(sum((v.reshape(v.shape[0], -1) ** 2).sum(1) for v in g.values()))
    return torch.cat(out)


def train_members(
    x: torch.Tensor, y: torch.Tensor, config: EnsembleConfig, generator: torch.Generator
) -> Params:
    """Train K = x.shape[0] members on (K, n, D) inputs and (K, n) targets with Eq. 8."""
    K, _, D = x.shape
    params = {
        k: v.requires_grad_() for k, v in init_params(K, D, config.mlp_hidden, generator).items()
    }
    opt = torch.optim.Adam(params.values(), lr=config.mlp_lr, weight_decay=config.mlp_weight_decay)
    warmup = config.mlp_epochs // 4
    for step in range(config.mlp_epochs):
        out = forward(params, x)
        mu, log_var = out[..., 0], out[..., 1].clamp(-8.0, 8.0)
        if step < warmup:
            loss = ((y - mu) ** 2).mean()
        else:  # Eq. 8, averaged over examples, summed over members
            loss = (0.5 * (y - mu) ** 2 * torch.exp(-log_var) + 0.5 * log_var).mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in params.items()}


@dataclass(frozen=True)
class MLPEnsemble:
    """Fitted heteroscedastic networks: K members and the main model, with the scalers."""

    members: Params  # leading axis K
    main: Params  # leading axis 1
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, config: EnsembleConfig, rng: np.random.Generator
    ) -> MLPEnsemble:
        x_mean, x_std = x.mean(0), x.std(0)
        x_std = np.where(x_std > 1e-12, x_std, 1.0)
        y_mean, y_std = float(y.mean()), float(y.std()) or 1.0
        xs = torch.as_tensor((x - x_mean) / x_std)
        ys = torch.as_tensor((y - y_mean) / y_std)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        idx = torch.as_tensor(bootstrap_indices(len(y), config.n_members, rng))
        members = train_members(xs[idx], ys[idx], config, gen)
        main = train_members(xs[None], ys[None], config, gen)
        return cls(members, main, x_mean, x_std, y_mean, y_std)

    def _scaled(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_std)

    def member_means(self, x: np.ndarray) -> np.ndarray:
        xs = self._scaled(x)
        with torch.no_grad():
            out = forward(self.members, xs.expand(self.members["w1"].shape[0], -1, -1))
        return self.y_mean + self.y_std * out[..., 0].numpy()

    def main_mean(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = forward(self.main, self._scaled(x)[None])
        return self.y_mean + self.y_std * out[0, :, 0].numpy()

    def predict(self, x: np.ndarray) -> Predictive:
        xs = torch.as_tensor((np.asarray(x, dtype=np.float64) - self.x_mean) / self.x_std)
        K = self.members["w1"].shape[0]
        with torch.no_grad():
            out = forward(self.members, xs.expand(K, -1, -1)).numpy()
            f = forward(self.main, xs[None])[0, :, 0].numpy()
        grad_sq = per_example_grad_sq(self.main, xs).numpy()
        s, s2 = self.y_std, self.y_std**2
        return Predictive(
            mean=self.y_mean + s * out[..., 0],
            var=s2 * np.exp(np.clip(out[..., 1], -8.0, 8.0)),
            f=self.y_mean + s * f,
            grad_sq=s2 * grad_sq,
        )
