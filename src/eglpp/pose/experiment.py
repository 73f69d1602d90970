"""The pose experiment's configuration: frozen dataclasses and the presets.

``eglpp run`` builds an :class:`ExperimentConfig` from a preset, then flags or a YAML file
override single fields (:func:`config_from_dict` rejects unknown keys by name). The config is
saved with the run (``config.json``) and a resumed run must have the same one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from eglpp.gradnorm_approx import DEFAULT_N_EXACT
from eglpp.pose.hourglass import HourglassConfig
from eglpp.pose.train import TrainConfig

__all__ = [
    "DATASETS",
    "PRESETS",
    "ExperimentConfig",
    "StrategyConfig",
    "preset",
    "config_from_dict",
    "config_to_dict",
]

DATASETS = ("synthetic", "lsp-lspet-rendered", "lsp", "lspet", "mpii")
ALL_STRATEGIES = ("random", "coreset", "multipeak", "learning-loss", "egl++")


@dataclass(frozen=True)
class StrategyConfig:
    """Hyperparameters of the pose strategies (each reads only its own)."""

    perplexity: float = 20.0  # EGL++: t-SNE perplexity of p(j|i) (Eq. 13)
    k: int = 30  # EGL++: top-K labelled neighbours
    renormalise: bool = False  # EGL++: renormalise p(j|i) over the top-K
    calibration: str = "all"  # EGL++: p(j|i) calibrated over "all" labelled points (Eq. 13)
    # or their "neighbours" (Barnes-Hut style, for large labelled sets; eglpp.affinity)
    label_source: str = "ground_truth"  # EGL++: neighbour labels, or "prediction"
    gradnorm: str = "all"  # EGL++: parameters of the exact norm: "all", "conv_linear" (the
    # paper's Goodfellow approximation, no batch-norm parameters) or "last" (last layer)
    gradnorm_method: str = "vmap"  # EGL++: how the norms are computed: "vmap" (torch.func
    # per-example gradients) or "hooks" (per-layer norms from activations × output gradients,
    # no per-example gradient materialised; "all"/"conv_linear" only)
    estimator: str = "exact"  # EGL++: "exact" (K products per image) or "approx" (the n_exact
    # most probable neighbours exactly, the rest by their p-weighted mean cotangent plus
    # n_probes random-sign probes: n_exact + 1 + n_probes products, eglpp.gradnorm_approx)
    n_exact: int = DEFAULT_N_EXACT  # EGL++ with estimator="approx": neighbours taken exactly
    n_probes: int = 0  # EGL++ with estimator="approx": probes of the rest's spread
    approx_check: int = 0  # EGL++ approx: pool images also scored exactly each cycle, to
    # measure the approximation's ranking (selection.npz detail_approx_check_*, logged)
    multipeak_max_peaks: int = 5  # multipeak: peaks per joint
    multipeak_min_distance: int | None = None  # multipeak: min peak distance (heatmap px);
    # None: 5 px at 64×64 heatmaps, scaled with the heatmap size
    ll_detach: bool = True  # Learning Loss: no gradients from the head into the pose net
    ll_objective: str = "margin"  # Learning Loss: "margin" (Yoo & Kweon) or "kl" (LL++)
    ll_weight: float = 1.0  # Learning Loss: weight of the head's loss
    ll_head_epochs: int = 10  # Learning Loss: epochs to fit the head on the base model

    def __post_init__(self) -> None:
        if self.gradnorm_method not in ("vmap", "hooks"):
            raise ValueError(
                f"strategy.gradnorm_method must be 'vmap' or 'hooks', got {self.gradnorm_method!r}"
            )
        if self.gradnorm_method == "hooks" and self.gradnorm not in ("all", "conv_linear"):
            raise ValueError(
                "strategy.gradnorm_method 'hooks' needs strategy.gradnorm 'all' or 'conv_linear', "
                f"got {self.gradnorm!r}"
            )
        if self.estimator not in ("exact", "approx"):
            raise ValueError(
                f"strategy.estimator must be 'exact' or 'approx', got {self.estimator!r}"
            )
        for name in ("n_exact", "n_probes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"strategy.{name} must be an integer >= 0, got {value!r}")


@dataclass(frozen=True)
class ExperimentConfig:
    """One pose active-learning experiment: runs × strategies × cycles."""

    dataset: str = "synthetic"  # one of DATASETS
    data_root: str | None = None  # lsp | lspet | mpii: the dataset's folder
    poses: str | None = None  # lsp-lspet-rendered: folder with lsp/ and lspet/ joints.mat
    strategies: tuple[str, ...] = ALL_STRATEGIES
    reference: str = "egl++"  # the strategy the p-values test against
    runs: int = 3
    cycles: int = 3
    budget: int = 100  # images annotated per cycle
    initial: int = 100  # random pool images labelled before cycle 1 (besides the base set)
    n_base: int = 0  # synthetic: a separately rendered labelled set (0: none)
    n_pool: int = 1000  # synthetic: pool size (rendered datasets: a cap, 0 = all)
    n_test: int = 500  # synthetic: test-set size (rendered datasets: a cap, 0 = all)
    input_size: int = 64  # network input, pixels (heatmaps are input / 4)
    pool_domain: str = "lsp"  # synthetic: appearance domain of pool and test
    base_domain: str = "lsp"  # synthetic: appearance domain of the base set
    model: HourglassConfig = field(default_factory=HourglassConfig)
    base_train: TrainConfig = field(default_factory=TrainConfig)  # the shared base model
    cycle_train: TrainConfig = field(default_factory=TrainConfig)  # each cycle's retraining
    retrain: str = "finetune"  # "finetune" from the previous cycle (fresh optimizer) | "scratch"
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    metric: str = "pck"  # "pck" (torso, α 0.2) | "pckh" (head box, α 0.5)
    alpha: float = 0.2
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 32  # inference and scoring batch
    explain_cycle: int = 1  # the cycle whose selection gets the interpretability figures
    keep_checkpoints: str = "last"  # "last" (per strategy) | "all"

    def __post_init__(self) -> None:
        problems = []
        if self.dataset not in DATASETS:
            problems.append(f"dataset={self.dataset!r} (expected one of {', '.join(DATASETS)})")
        for name in ("runs", "cycles", "budget"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (expected >= 1)")
        for name in ("initial", "n_base", "n_pool", "n_test"):
            if getattr(self, name) < 0:
                problems.append(f"{name}={getattr(self, name)} (expected >= 0)")
        if not self.strategies:
            problems.append("strategies is empty")
        if len(set(self.strategies)) != len(self.strategies):
            problems.append(f"strategies={list(self.strategies)} has duplicates")
        if self.retrain not in ("finetune", "scratch"):
            problems.append(f"retrain={self.retrain!r} (expected 'finetune' or 'scratch')")
        if self.metric not in ("pck", "pckh"):
            problems.append(f"metric={self.metric!r} (expected 'pck' or 'pckh')")
        if self.keep_checkpoints not in ("last", "all"):
            problems.append(f"keep_checkpoints={self.keep_checkpoints!r} ('last' or 'all')")
        if not 1 <= self.explain_cycle <= max(self.cycles, 1):
            problems.append(f"explain_cycle={self.explain_cycle} (expected 1..{self.cycles})")
        if self.input_size % self.model.size_multiple:
            problems.append(
                f"input_size={self.input_size} (must be divisible by {self.model.size_multiple} "
                f"for an hourglass of depth {self.model.depth})"
            )
        if problems:
            raise ValueError("invalid experiment config: " + "; ".join(problems))

    @property
    def n_labelled(self) -> list[int]:
        """Labelled images at each evaluation point (without a dataset-given base set)."""
        return [self.n_base + self.initial + c * self.budget for c in range(self.cycles + 1)]


_QUICK_TRAIN = TrainConfig(epochs=8, batch_size=16, lr=1e-3, optimizer="adam", sigma=1.5)
PRESETS: dict[str, ExperimentConfig] = {
    # ≤ 1 minute on 2 CPU cores: a smoke test, not a result.
    "tiny": ExperimentConfig(
        runs=2,
        cycles=2,
        budget=16,
        initial=32,
        n_pool=128,
        n_test=64,
        input_size=32,
        model=HourglassConfig(n_stacks=1, channels=16, depth=2),
        base_train=replace(_QUICK_TRAIN, epochs=3),
        cycle_train=replace(_QUICK_TRAIN, epochs=2),
        strategy=StrategyConfig(k=5, perplexity=3.0, ll_head_epochs=2),
    ),
    # ≤ 10 minutes on 2 CPU cores: 64-px images, a 2-stack 32-channel hourglass, a pool of
    # 800, 3 runs × 3 cycles × 100 images, 10 neighbours; see the README for what it trades away.
    "quick": ExperimentConfig(
        runs=3,
        cycles=3,
        budget=100,
        initial=200,
        n_pool=800,
        n_test=300,
        input_size=64,
        model=HourglassConfig(n_stacks=2, channels=32, depth=3),
        base_train=replace(_QUICK_TRAIN, epochs=40, lr=2e-3, schedule="cosine"),
        cycle_train=replace(_QUICK_TRAIN, epochs=6),
        strategy=StrategyConfig(k=10, perplexity=7.0, ll_head_epochs=5),
    ),
    # The paper's protocol: 1000 initial + 5 cycles × 1000, 5 runs, 2-stack 256-channel
    # hourglass at 256×256; for a GPU.
    "paper": ExperimentConfig(
        runs=5,
        cycles=5,
        budget=1000,
        initial=1000,
        n_pool=10000,
        n_test=2000,
        input_size=256,
        model=HourglassConfig(n_stacks=2, channels=256, depth=4),
        base_train=TrainConfig(
            epochs=100, batch_size=32, lr=2.5e-4, optimizer="rmsprop", sigma=1.75
        ),
        cycle_train=TrainConfig(
            epochs=30, batch_size=32, lr=2.5e-4, optimizer="rmsprop", sigma=1.75
        ),
        strategy=StrategyConfig(k=30, perplexity=20.0),
        device="cuda",
        batch_size=16,
    ),
}


def preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (expected one of {', '.join(PRESETS)})")
    return PRESETS[name]


_NESTED = {
    "model": HourglassConfig,
    "base_train": TrainConfig,
    "cycle_train": TrainConfig,
    "strategy": StrategyConfig,
}


_SCALARS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": ()}


def _coerce(cls: type, name: str, value: Any, where: str) -> Any:
    kinds = {f.name: f.type for f in fields(cls)}
    kind = str(kinds[name])
    if "tuple" in kind and isinstance(value, (list, str)):
        return (
            tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)
        )
    parts = [p.strip() for p in kind.split("|")]
    if all(p in _SCALARS for p in parts):  # a plain scalar field: check the value's type
        ok = (value is None and "None" in parts) or (
            value is not None
            and (not isinstance(value, bool) or "bool" in parts)
            and isinstance(value, tuple(t for p in parts for t in _SCALARS[p]))
        )
        if not ok:
            raise ValueError(f"{where}.{name} must be {kind}, got {value!r}")
    return value


def _apply(base: Any, overrides: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    changes = {}
    for name, value in overrides.items():
        current = getattr(base, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{name} must be a mapping, got {type(value).__name__}")
            changes[name] = _apply(current, value, f"{where}.{name}")
        else:
            changes[name] = _coerce(type(base), name, value, where)
    try:
        return replace(base, **changes)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def config_from_dict(
    overrides: dict[str, Any], base: ExperimentConfig | None = None, where: str = "config"
) -> ExperimentConfig:
    """``base`` (default: the ``quick`` preset) with ``overrides`` applied; nested sections
    (``model``, ``base_train``, ``cycle_train``, ``strategy``) are mappings. Unknown keys are
    rejected by name."""
    return _apply(base or PRESETS["quick"], overrides, where)


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists) that :func:`config_from_dict` reads back."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(asdict(config))
