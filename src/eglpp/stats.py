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

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps
from scipy.integrate import trapezoid

__all__ = [
    "Summary",
    "validate_results",
    "paired_pvalue",
    "format_p",
    "area_under_curve",
    "detectable_difference",
    "DETECT_ALPHA",
    "summarize",
    "to_markdown",
    "power_lines",
    "to_csv",
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
    diff = reference - other
    scale = max(float(np.abs(reference).max()), float(np.abs(other).max()), 1e-300)
    if np.ptp(diff) <= 1e-12 * scale:  # zero-variance differences: no t-test
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
    for s, v in scores.items():
        ddof = 1 if v.shape[0] > 1 else 0
        mean[s] = v.mean(axis=0).tolist()
        std[s] = v.std(axis=0, ddof=ddof).tolist()
        auc = area_under_curve(x, v)
        auc_m[s] = float(auc.mean())
        auc_s[s] = float(auc.std(ddof=ddof))
        if reference is None or s == reference:
            pval[s] = det[s] = [math.nan] * v.shape[1]
            auc_p[s] = auc_det[s] = math.nan
        else:
            ref = scores[reference]
            pval[s] = [paired_pvalue(ref[:, i], v[:, i], hib) for i in range(v.shape[1])]
            auc_p[s] = paired_pvalue(area_under_curve(x, ref), auc, hib)
            det[s] = [detectable_difference(ref[:, i] - v[:, i]) for i in range(v.shape[1])]
            auc_det[s] = detectable_difference(area_under_curve(x, ref) - auc)
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
    )


def format_p(p: float) -> str:
    """``0.047``, ``<0.001``, or ``—`` where there is no test.

    Every table, the report and the CLI print p-values through this one function.

    >>> format_p(0.0004), format_p(0.0467), format_p(float("nan"))
    ('<0.001', '0.047', '—')
    """
    if math.isnan(p):
        return "—"
    return "<0.001" if p < 0.0005 else f"{p:.3f}"


def power_lines(summary: Summary, scale: float = 1.0, digits: int = 3) -> list[str]:
    """One line per strategy: the smallest difference from the reference that these runs detect
    at p < DETECT_ALPHA, at the last number labelled and for the AUC (empty without a
    reference or with fewer than two runs)."""
    if summary.reference is None or summary.detectable is None or summary.n_runs < 2:
        return []
    lines = []
    for s in summary.strategies:
        if s == summary.reference:
            continue
        final, auc = summary.detectable[s][-1], summary.auc_detectable[s]
        lines.append(
            f"- {s}: {final * scale:.{digits}f} at n={summary.n_labelled[-1]}, "
            f"{auc * scale:.{digits}f} in AUC"
        )
    head = (
        f"Smallest difference from '{summary.reference}' that {summary.n_runs} runs detect at "
        f"p < {DETECT_ALPHA:g} (one-tailed; t·s/√n of the paired differences): smaller "
        "differences may be real but cannot show as significant."
    )
    return [head, *lines]


def _rows(summary: Summary, scale: float, digits: int) -> tuple[list[str], list[list[str]]]:
    header = ["strategy"] + [str(n) for n in summary.n_labelled] + ["AUC"]
    rows = []
    for s in summary.strategies:
        cells = [s]
        for i in range(len(summary.n_labelled)):
            m, sd, p = summary.mean[s][i], summary.std[s][i], summary.pvalue[s][i]
            cells.append(f"{m * scale:.{digits}f} ± {sd * scale:.{digits}f} (p={format_p(p)})")
        cells.append(
            f"{summary.auc_mean[s] * scale:.{digits}f} ± "
            f"{summary.auc_std[s] * scale:.{digits}f} (p={format_p(summary.auc_pvalue[s])})"
        )
        rows.append(cells)
    return header, rows


def to_markdown(summary: Summary, scale: float = 1.0, digits: int = 3) -> str:
    """Table 1 as Markdown: one row per strategy, ``mean ± std (p=…)`` per number labelled."""
    header, rows = _rows(summary, scale, digits)
    arrow = "higher is better" if summary.higher_is_better else "lower is better"
    ref = summary.reference or "none"
    lines = [
        f"{summary.metric} ({arrow}); mean ± std over {summary.n_runs} runs; p: one-tailed "
        f"paired t-test that '{ref}' is better",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    power = power_lines(summary, scale, digits)
    if power:
        lines += ["", *power]
    return "\n".join(lines) + "\n"


def to_csv(summary: Summary) -> str:
    """Long-format CSV: strategy, n_labelled, mean, std, p_value, n_runs, detectable (the
    smallest difference from the reference the runs detect at p < DETECT_ALPHA); AUC rows use
    n_labelled=AUC."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["strategy", "n_labelled", "mean", "std", "p_value", "n_runs", "detectable"])
    nan = math.nan
    for s in summary.strategies:
        det = (summary.detectable or {}).get(s, [nan] * len(summary.n_labelled))
        for i, n in enumerate(summary.n_labelled):
            w.writerow([s, n, summary.mean[s][i], summary.std[s][i], summary.pvalue[s][i],
                        summary.n_runs, det[i]])  # fmt: skip
        auc_det = (summary.auc_detectable or {}).get(s, nan)
        w.writerow([s, "AUC", summary.auc_mean[s], summary.auc_std[s], summary.auc_pvalue[s],
                    summary.n_runs, auc_det])  # fmt: skip
    return buf.getvalue()


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
