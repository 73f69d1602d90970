"""The pose experiment's configuration: frozen dataclasses and the presets.

``eglpp run`` builds an :class:`ExperimentConfig` from a preset, then flags or a YAML file
override single fields (:func:`config_from_dict` rejects unknown keys by name). The config is
saved with the run (``config.json``) and a resumed run must have the same one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from eglpp.pose.hourglass import HourglassConfig
from eglpp.pose.skeleton import LSP, MPII
from eglpp.pose.train import TrainConfig
from eglpp.scoring.settings import ScoringConfig
from eglpp.strategies import EGLPlusPlus, LearningLoss, StrategySettings, settings_field

__all__ = [
    "DATASETS",
    "PRESETS",
    "ExperimentConfig",
    "preset",
    "config_from_dict",
    "config_to_dict",
    "upgrade_v1",
]

DATASETS = ("synthetic", "lsp-lspet-rendered", "lsp", "lspet", "mpii", "coco")
ALL_STRATEGIES = ("random", "coreset", "multipeak", "learning-loss", "egl++")


@dataclass(frozen=True)
class ExperimentConfig:
    """One pose active-learning experiment: runs × strategies × cycles."""

    dataset: str = "synthetic"  # one of DATASETS
    data_root: str | None = None  # lsp | lspet | mpii: the dataset's folder; coco: its .json
    images_root: str | None = None  # coco: the folder its relative file names are in (default:
    # the file's info.images_root, else its folder)
    poses: str | None = None  # lsp-lspet-rendered: folder with lsp/ and lspet/ joints.mat
    strategies: tuple[str, ...] = ALL_STRATEGIES
    reference: str = "egl++"  # the strategy the p-values test against
    runs: int = 3
    cycles: int = 3
    budget: int = 100  # images annotated per cycle
    initial: int = 100  # random pool images labelled before cycle 1 (besides the base set)
    n_base: int = 0  # synthetic: a separately rendered labelled set (0: none);
    # lsp-lspet-rendered: a cap on its base set of LSP's 1000 train poses (0: all)
    n_pool: int = 1000  # synthetic: pool size (rendered datasets: a cap, 0 = all)
    n_test: int = 500  # synthetic: test-set size (rendered datasets: a cap, 0 = all)
    input_size: int = 64  # network input, pixels (heatmaps are input / 4)
    pool_domain: str = "lsp"  # synthetic: appearance domain of pool and test
    base_domain: str = "lsp"  # synthetic: appearance domain of the base set
    model: HourglassConfig = field(default_factory=HourglassConfig)
    base_train: TrainConfig = field(default_factory=TrainConfig)  # the shared base model
    cycle_train: TrainConfig = field(default_factory=TrainConfig)  # each cycle's retraining
    retrain: str = "finetune"  # "finetune" from the previous cycle (fresh optimizer) | "scratch"
    common_random_numbers: bool = True  # every strategy of a (run, cycle) retrains with the same
    # randomness: one seed per (run, cycle) and shuffles keyed by pool index, so the paired
    # t-test compares selections, not training noise; False: seeds per strategy (as before)
    strategy: StrategySettings = field(default_factory=StrategySettings)  # each strategy's own
    # settings object, by name: strategy.egl++.k (or strategy.egl_pp.k), strategy.multipeak.…
    scoring: ScoringConfig = field(default_factory=ScoringConfig)  # how EGL++'s norms are computed
    metric: str | None = None  # "pck" (torso) | "pckh" (head box) | "pckb" (the keypoints'
    # box, any skeleton); None: the dataset's usual,
    # PCKh on mpii (its evaluation tool's), PCK elsewhere (see resolved())
    alpha: float | None = None  # the metric's threshold; None: 0.5 for PCKh, 0.2 for PCK
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
        if self.metric not in (None, "pck", "pckh", "pckb"):
            problems.append(f"metric={self.metric!r} (expected 'pck', 'pckh' or 'pckb')")
        if self.alpha is not None and not self.alpha > 0:
            problems.append(f"alpha={self.alpha} (expected > 0)")
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

    def resolved(self) -> ExperimentConfig:
        """This config with the dataset's defaults filled in: ``metric`` and ``alpha`` where
        they are None (PCKh@0.5 on MPII, the MPII evaluation tool's metric; PCK@0.2 on the
        other datasets), and on MPII a model of LSP's 14 joints (every preset's) made MPII's 16.

        >>> cfg = ExperimentConfig(dataset="mpii").resolved()
        >>> cfg.metric, cfg.alpha, cfg.model.n_joints
        ('pckh', 0.5, 16)
        """
        metric = self.metric or ("pckh" if self.dataset == "mpii" else "pck")
        alpha = self.alpha if self.alpha is not None else (0.5 if metric == "pckh" else 0.2)
        model = self.model
        if self.dataset == "mpii" and model.n_joints == LSP.n_joints:
            model = replace(model, n_joints=MPII.n_joints)
        return replace(self, metric=metric, alpha=alpha, model=model)


def _strategies(k: int, perplexity: float, head_epochs: int) -> StrategySettings:
    """A preset's strategy settings: EGL++'s neighbours and perplexity, Learning Loss's head."""
    return StrategySettings(
        egl_pp=EGLPlusPlus(k=k, perplexity=perplexity),
        learning_loss=LearningLoss(head_epochs=head_epochs),
    )


_QUICK_TRAIN = TrainConfig(epochs=8, batch_size=16, lr=1e-3, optimizer="adam", sigma=1.5)
#: Each cycle's fine-tuning: cosine decay after a linear warm-up of 20 steps (quick: a fifth
#: of cycle 1's 105 steps), so the fresh optimizer does not jolt the converged base model. Measured
#: on rendered LSP→LSPET (benchmarks/finetune_dip.py, 3 runs, the same 100 random labels for
#: every recipe, warm-up one epoch): cycle-1 change +1.07 ± 0.67 PCK points, against
#: +0.15 ± 1.07 with a constant lr.
_FINETUNE = replace(_QUICK_TRAIN, schedule="cosine", warmup_steps=20)
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
        cycle_train=replace(_FINETUNE, epochs=2, warmup_steps=3),  # one epoch of cycle 1
        strategy=_strategies(k=5, perplexity=3.0, head_epochs=2),
    ),
    # A small real experiment on 2 CPU cores (benchmarks/main_job.py), on the steep part of
    # the network's learning curve (benchmarks/learning_curve.py): 64-px images, a 2-stack
    # 32-channel hourglass; the base model learns from a separately rendered base set of 300
    # people plus 100 random pool images (750 steps, Adam peaking at 2.4e-2, cosine); a pool of
    # 800 (700 to choose from), 3 runs × 3 cycles × 150 images (400 → 850 labelled), each cycle
    # fine-tuned for 3 epochs of the labelled set at a peak of 1.2e-2 (cosine after a 20-step
    # warm-up), 10 neighbours. Random gains ~9 PCK points over the cycles (measured by
    # benchmarks/learning_curve.py and the candidates in benchmarks/results/README.md).
    "quick": ExperimentConfig(
        runs=3,
        cycles=3,
        budget=150,
        initial=100,
        n_base=300,
        n_pool=800,
        n_test=300,
        input_size=64,
        model=HourglassConfig(n_stacks=2, channels=32, depth=3),
        base_train=replace(_QUICK_TRAIN, epochs=30, lr=2.4e-2, schedule="cosine"),
        cycle_train=replace(_FINETUNE, epochs=3, lr=1.2e-2),
        strategy=_strategies(k=10, perplexity=7.0, head_epochs=5),
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
        strategy=_strategies(k=30, perplexity=20.0, head_epochs=10),
        device="cuda",
        batch_size=16,
    ),
}


def preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (expected one of {', '.join(PRESETS)})")
    return PRESETS[name]


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


#: Version-1 run folders (before one settings object per strategy) kept every strategy's settings
#: in one flat ``strategy`` section; where each of its keys lives now.
_V1_STRATEGY_KEYS = {
    **{k: ("strategy", "egl_pp", k) for k in
       ("perplexity", "k", "renormalise", "calibration", "label_source", "estimator")},
    **{k: ("scoring", k) for k in
       ("gradnorm", "gradnorm_method", "n_exact", "n_probes", "approx_check")},
    "multipeak_max_peaks": ("strategy", "multipeak", "max_peaks"),
    "multipeak_min_distance": ("strategy", "multipeak", "min_distance"),
    "ll_detach": ("strategy", "learning_loss", "detach_features"),
    "ll_objective": ("strategy", "learning_loss", "objective"),
    "ll_weight": ("strategy", "learning_loss", "weight"),
    "ll_head_epochs": ("strategy", "learning_loss", "head_epochs"),
}  # fmt: skip


def upgrade_v1(overrides: dict[str, Any]) -> dict[str, Any]:
    """A version-1 config (flat ``strategy`` section) in today's shape; others unchanged.

    >>> upgrade_v1({"strategy": {"k": 5, "gradnorm": "last"}})
    {'strategy': {'egl_pp': {'k': 5}}, 'scoring': {'gradnorm': 'last'}}
    """
    flat = overrides.get("strategy")
    if not isinstance(flat, dict) or not set(flat) & set(_V1_STRATEGY_KEYS):
        return overrides
    out = {k: v for k, v in overrides.items() if k != "strategy"}
    for key, value in flat.items():
        *path, leaf = _V1_STRATEGY_KEYS.get(key, ("strategy", key))
        node = out
        for name in path:
            node = node.setdefault(name, {})
        node[leaf] = value
    return out


def _apply(base: Any, overrides: dict[str, Any], where: str) -> Any:
    if isinstance(base, StrategySettings):  # strategies by name: egl++ or egl_pp
        overrides = {settings_field(k): v for k, v in overrides.items()}
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
    (``model``, ``base_train``, ``cycle_train``, ``strategy.<name>``, ``scoring``) are mappings.
    Unknown keys are rejected by name; a version-1 ``strategy`` section is read
    (:func:`upgrade_v1`)."""
    return _apply(base or PRESETS["quick"], upgrade_v1(overrides), where)


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists) that :func:`config_from_dict` reads back."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(asdict(config))
