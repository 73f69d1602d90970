"""How the pool outputs are computed: one settings object for ``eglpp run`` and ``eglpp select``.

Device and batch size are not here: they are the run's (training and evaluation use them too)
and each command takes them once. What a strategy scores (EGL++'s neighbours, perplexity,
estimator) is the strategy's own settings object (:mod:`eglpp.strategies`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eglpp.gradnorm.approx import DEFAULT_N_EXACT
from eglpp.gradnorm.base import memory_bytes

__all__ = ["ScoringConfig"]


@dataclass(frozen=True)
class ScoringConfig:
    """How EGL++'s gradient norms are computed and checked."""

    gradnorm: str = "all"  # parameters of the norm: "all", "conv_linear" (the paper's Goodfellow
    # approximation, no batch-norm parameters) or "last" (last layer)
    gradnorm_method: str = "auto"  # "auto" (hooks where every parameter is a layer's, else
    # vmap; the choice is logged and recorded), "vmap" (torch.func per-example gradients) or
    # "hooks" (per-layer norms from activations × output gradients; "all"/"conv_linear" only)
    max_memory: int | str | None = None  # bytes, or "8GiB": what the chunks of (image,
    # neighbour) pairs may hold; None: eglpp.gradnorm's default (512 MiB of entries on the CPU)
    n_exact: int = DEFAULT_N_EXACT  # EGL++ estimator="approx": neighbours taken exactly
    n_probes: int = 0  # EGL++ estimator="approx": random-sign probes of the other neighbours
    approx_check: int = 0  # EGL++ estimator="approx": candidates also scored exactly, to
    # measure the approximation's ranking (eglpp.scoring.approx_check)

    def __post_init__(self) -> None:
        if self.gradnorm not in ("all", "conv_linear", "last"):
            raise ValueError(
                f"scoring.gradnorm must be 'all', 'conv_linear' or 'last', got {self.gradnorm!r}"
            )
        if self.gradnorm_method not in ("auto", "vmap", "hooks"):
            raise ValueError(
                "scoring.gradnorm_method must be 'auto', 'vmap' or 'hooks', got "
                f"{self.gradnorm_method!r}"
            )
        if self.max_memory is not None:
            memory_bytes(self.max_memory, "scoring.max_memory")
        if self.gradnorm_method == "hooks" and self.gradnorm not in ("all", "conv_linear"):
            raise ValueError(
                "scoring.gradnorm_method 'hooks' needs scoring.gradnorm 'all' or 'conv_linear', "
                f"got {self.gradnorm!r}"
            )
        for name in ("n_exact", "n_probes", "approx_check"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"scoring.{name} must be an integer >= 0, got {value!r}")
