"""Summaries of an experiment: mean, std, one-tailed paired t-tests, area under the curve.

Every experiment of the project (regression and pose) is stored as ``results.json`` with the
schema validated by :func:`validate_results`::

    {"task": str, "metric": str, "higher_is_better": bool,
     "n_labelled": [int, ...],                       # n_labelled[0] is the initial set
     "scores": {strategy: [[value per n_labelled] per run]},
     "config": {...}}

The paper's Table 1 reports, per number of labelled items, each strategy's mean and standard
deviation over runs and the p-value of a one-tailed paired t-test against the reference
strategy (EGL / EGL++), the pairs being runs. "One-tailed" asks whether the reference is better:
``alternative="greater"`` on (reference - other) when higher is better, ``"less"`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from scipy.integrate import trapezoid

from eglpp.significance import constant_difference, format_p, holm, two_sided

__all__ = [
    "Summary",
    "validate_results",
    "paired_pvalue",
    "format_p",
    "area_under_curve",
    "detectable_difference",
    "DETECT_ALPHA",
    "summarize",
    "rank_agreement",
    "RANK_GATE",
]

#: What an approximate score must keep of the exact ranking (issue 5's gate): Spearman's ρ and
#: the share of the exact top 10 % it also puts in its top 10 %.
RANK_GATE = {"spearman": 0.98, "top_overlap": 0.9}
#: The significance level at which :func:`detectable_difference` states the runs' power.
DETECT_ALPHA = 0.1


def validate_results(results: dict[str, Any], source: str = "results") -> dict[str, Any]:
    """Check ``results`` against the results.json schema; raise ``ValueError`` naming the field."""
    for key, kind in (
        ("task", str),
        ("metric", str),
        ("higher_is_better", bool),
        ("n_labelled", list),
        ("scores", dict),
        ("config", dict),
    ):
        if key not in results:
            raise ValueError(f"{source}: missing field '{key}'")
        if not isinstance(results[key], kind):
            raise ValueError(
                f"{source}: field '{key}' must be {kind.__name__}, "
                f"got {type(results[key]).__name__}"
            )
    n_points = len(results["n_labelled"])
    if n_points == 0:
        raise ValueError(f"{source}: field 'n_labelled' is empty")
    _check_numbers(results["n_labelled"], f"{source}: n_labelled", allow_null=False)
    for strategy, runs in results["scores"].items():
        if not isinstance(runs, list) or not runs:
            raise ValueError(f"{source}: scores['{strategy}'] must be a non-empty list of runs")
        for r, values in enumerate(runs):
            if not isinstance(values, list) or len(values) != n_points:
                raise ValueError(
                    f"{source}: scores['{strategy}'][{r}] must list {n_points} values "
                    f"(one per n_labelled), got {values!r:.80}"
                )
            _check_numbers(values, f"{source}: scores['{strategy}'][{r}]", allow_null=True)
    return results


def _check_numbers(values: list, where: str, allow_null: bool) -> None:
    """Each of ``values`` is a number (or null, JSON's NaN, where ``allow_null``)."""
    for k, v in enumerate(values):
        if (v is None and allow_null) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            continue
        raise ValueError(f"{where}[{k}] is {v!r:.40}, not a number")


def paired_pvalue(reference: np.ndarray, other: np.ndarray, higher_is_better: bool) -> float:
    """One-tailed paired t-test p-value that ``reference`` beats ``other`` (pairs = runs).

    Returns NaN with fewer than two pairs or when every difference is the same (up to
    floating-point rounding): the t statistic is then undefined, and scipy would report a
    p-value of 0 or 1 from rounding noise alone.

    >>> round(paired_pvalue(np.array([2., 3., 4.]), np.array([1., 1.5, 3.5]), True), 4)
    0.0371
    """
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"paired samples differ in shape: {reference.shape} vs {other.shape}")
    if reference.size < 2:
        return math.nan
    if not math.isnan(constant_difference(reference, other)):  # zero-variance differences
        return math.nan
    alternative = "greater" if higher_is_better else "less"
    with np.errstate(all="ignore"):
        res = sps.ttest_rel(reference, other, alternative=alternative)
    return float(res.pvalue)


def detectable_difference(diff: np.ndarray, alpha: float = DETECT_ALPHA) -> float:
    """The smallest mean paired difference these runs would call significant at ``p < alpha``.

    For n paired differences with standard deviation ``s`` (ddof 1), the one-tailed paired
    t-test reaches ``p = alpha`` when the mean difference is

    .. math:: d_{\\min} = t_{1-\\alpha,\\, n-1}\\, s / \\sqrt{n}.

    A difference smaller than that can be real and still not be significant with these runs:
    "no significant difference" reads as "no difference larger than d_min was seen". NaN with
    fewer than two pairs.

    >>> round(detectable_difference(np.array([1.0, 2.0, 3.0])), 4)  # t_0.9,2 = 1.8856, s = 1
    1.0887
    """
    d = np.asarray(diff, dtype=np.float64)
    if d.size < 2:
        return math.nan
    return float(sps.t.ppf(1.0 - alpha, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))


def area_under_curve(n_labelled: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Normalised area under learning curves: the trapezoid mean of ``values`` over ``n_labelled``.

    ``values`` has shape (..., n_points); the result has shape (...,) and is in the metric's unit
    (the area divided by the span of ``n_labelled``). With one point it is that point.
    """
    x = np.asarray(n_labelled, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if x.size == 1:
        return v[..., 0]
    return trapezoid(v, x, axis=-1) / (x[-1] - x[0])


@dataclass(frozen=True)
class Summary:
    """Table 1 of an experiment, plus the area under each strategy's curve."""

    n_labelled: list[int]
    strategies: list[str]
    reference: str | None
    mean: dict[str, list[float]]
    std: dict[str, list[float]]
    pvalue: dict[str, list[float]]  # NaN for the reference itself
    auc_mean: dict[str, float]
    auc_std: dict[str, float]
    auc_pvalue: dict[str, float]
    n_runs: int
    metric: str
    higher_is_better: bool
    #: smallest difference from the reference the runs detect at p < DETECT_ALPHA (NaN: none)
    detectable: dict[str, list[float]] | None = None
    auc_detectable: dict[str, float] | None = None
    #: the paired difference (reference - strategy) where it is the same in every run, else NaN
    constant: dict[str, list[float]] | None = None
    auc_constant: dict[str, float] | None = None
    #: two-sided p-values, Holm-adjusted over all the table's tests (its cells and AUCs)
    holm: dict[str, list[float]] | None = None
    auc_holm: dict[str, float] | None = None

    def n_tests(self) -> int:
        """How many cells of the table have a t-test (Holm's family)."""
        cells = [*(v for s in self.strategies for v in self.pvalue[s]), *self.auc_pvalue.values()]
        return sum(math.isfinite(p) for p in cells)


def summarize(results: dict[str, Any], reference: str | None = None) -> Summary:
    """Mean, std (ddof=1) and paired one-tailed p-values against ``reference`` per point.

    ``reference`` defaults to the first of ``egl++``, ``egl`` found in the results.
    """
    validate_results(results)
    scores = {s: np.asarray(v, dtype=np.float64) for s, v in results["scores"].items()}
    n_runs = {s: v.shape[0] for s, v in scores.items()}
    if len(set(n_runs.values())) != 1:
        raise ValueError(f"strategies have different numbers of runs: {n_runs}")
    if reference is None:
        reference = next((r for r in ("egl++", "egl") if r in scores), None)
    elif reference not in scores:
        raise ValueError(f"reference strategy '{reference}' not in results (have {sorted(scores)})")
    hib = bool(results["higher_is_better"])
    x = np.asarray(results["n_labelled"], dtype=np.float64)
    mean, std, pval, auc_m, auc_s, auc_p, det, auc_det = {}, {}, {}, {}, {}, {}, {}, {}
    const, auc_const = {}, {}
    for s, v in scores.items():
        ddof = 1 if v.shape[0] > 1 else 0
        mean[s] = v.mean(axis=0).tolist()
        std[s] = v.std(axis=0, ddof=ddof).tolist()
        auc = area_under_curve(x, v)
        auc_m[s] = float(auc.mean())
        auc_s[s] = float(auc.std(ddof=ddof))
        if reference is None or s == reference:
            pval[s] = det[s] = const[s] = [math.nan] * v.shape[1]
            auc_p[s] = auc_det[s] = auc_const[s] = math.nan
        else:
            ref = scores[reference]
            pval[s] = [paired_pvalue(ref[:, i], v[:, i], hib) for i in range(v.shape[1])]
            auc_p[s] = paired_pvalue(area_under_curve(x, ref), auc, hib)
            const[s] = [constant_difference(ref[:, i], v[:, i]) for i in range(v.shape[1])]
            auc_const[s] = constant_difference(area_under_curve(x, ref), auc)
            det[s] = [detectable_difference(ref[:, i] - v[:, i]) for i in range(v.shape[1])]
            auc_det[s] = detectable_difference(area_under_curve(x, ref) - auc)
    names, width = list(scores), len(x)
    family = [two_sided(p) for s in names for p in [*pval[s], auc_p[s]]]
    adjusted = holm(family).reshape(len(names), width + 1).tolist()
    return Summary(
        n_labelled=[int(n) for n in results["n_labelled"]],
        strategies=list(scores),
        reference=reference,
        mean=mean,
        std=std,
        pvalue=pval,
        auc_mean=auc_m,
        auc_std=auc_s,
        auc_pvalue=auc_p,
        n_runs=next(iter(n_runs.values())),
        metric=results["metric"],
        higher_is_better=hib,
        detectable=det,
        auc_detectable=auc_det,
        constant=const,
        auc_constant=auc_const,
        holm={s: row[:width] for s, row in zip(names, adjusted, strict=True)},
        auc_holm={s: row[width] for s, row in zip(names, adjusted, strict=True)},
    )


def rank_agreement(
    reference: ArrayLike, estimate: ArrayLike, top_fraction: float = 0.1
) -> dict[str, Any]:
    """How well ``estimate`` ranks the items that ``reference`` scores (higher = first).

    Returns ``n``, Spearman's ``spearman`` (NaN below 3 items), ``top`` (the top
    ``top_fraction`` of the items, at least 1), ``top_overlap`` (the share of the reference's
    top items also in the estimate's) and ``passes`` (:data:`RANK_GATE`).

    >>> rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])
    {'n': 4, 'spearman': 1.0, 'top': 1, 'top_overlap': 1.0, 'passes': True}
    """
    a, b = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"rank_agreement needs two (n,) arrays, got {a.shape} and {b.shape}")
    n = len(a)
    top = max(1, int(n * top_fraction))
    overlap = len(set(np.argsort(-a)[:top]) & set(np.argsort(-b)[:top])) / top
    rho = float(sps.spearmanr(a, b).statistic) if n > 2 else math.nan
    passes = rho >= RANK_GATE["spearman"] and overlap >= RANK_GATE["top_overlap"]
    return {"n": n, "spearman": rho, "top": top, "top_overlap": overlap, "passes": bool(passes)}
