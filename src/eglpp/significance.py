"""What a Table 1 cell's test says, in words, and Holm's correction over a table's tests.

:func:`eglpp.stats.paired_pvalue` is one-tailed: it asks whether the reference is better. A
strategy that beats the reference reads ``p=0.999`` there, which says nothing by itself; a cell
whose paired differences are all equal has no t-test at all. :func:`cell_note` says each case
plainly ("random better", "identical in every run"), and :func:`holm` adjusts the two-sided
p-values of all the cells of a table together, so that a coloured cell among dozens means more
than the ~5 % that chance colours at p < 0.05.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "pooled_se",
    "ALPHA",
    "format_p",
    "p_text",
    "holm",
    "two_sided",
    "constant_difference",
    "cell_note",
    "direction",
]

#: Significance level of the words and colours of a table (each test, and Holm's familywise).
ALPHA = 0.05


def format_p(p: float) -> str:
    """``0.047``, ``<0.001``, ``>0.999``, or ``—`` where there is no test.

    Every table, the report and the CLI print p-values through this one function.

    >>> format_p(0.0004), format_p(0.0467), format_p(0.99996), format_p(float("nan"))
    ('<0.001', '0.047', '>0.999', '—')
    """
    if math.isnan(p):
        return "—"
    return "<0.001" if p < 0.0005 else ">0.999" if p > 0.9995 else f"{p:.3f}"


def p_text(p: float) -> str:
    """``p=0.123``, ``p=—`` (no test), ``p<0.001`` or ``p>0.999``."""
    text = format_p(p)
    return f"p{text}" if text[0] in "<>" else f"p={text}"


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaN entries (no test) are left out of the family.

    With the m finite p-values sorted, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`, the adjusted
    value of :math:`p_{(k)}` is :math:`\\max_{j \\le k} \\min(1, (m - j + 1)\\, p_{(j)})`; a test
    is significant at familywise level α where its adjusted value is below α.

    >>> holm([0.01, 0.04, 0.03, float("nan")]).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for k, index in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[index]))
        adjusted[index] = running
    return adjusted


def two_sided(p_one: float) -> float:
    """The two-sided p-value of a symmetric test from its one-tailed ``p_one`` (NaN stays).

    >>> round(two_sided(0.999), 6), two_sided(0.02)
    (0.002, 0.04)
    """
    if math.isnan(p_one):
        return math.nan
    return min(1.0, 2.0 * min(p_one, 1.0 - p_one))


def constant_difference(reference: ArrayLike, other: ArrayLike) -> float:
    """The paired difference ``reference - other`` where it is the same in every run (up to
    floating-point rounding, as :func:`eglpp.stats.paired_pvalue` decides), else NaN; NaN with
    fewer than two runs (nothing to compare)."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    if a.size < 2:
        return math.nan
    diff = a - b
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-300)
    if np.ptp(diff) <= 1e-12 * scale:
        return 0.0 if np.abs(diff).max() <= 1e-12 * scale else float(diff.mean())
    return math.nan


def direction(p_one: float, alpha: float = ALPHA) -> int:
    """+1 where the reference is significantly better (one-tailed ``p_one`` < alpha), -1 where
    the other strategy is (the reverse test, 1 - p_one < alpha), 0 otherwise or without a test."""
    if math.isnan(p_one):
        return 0
    return 1 if p_one < alpha else -1 if 1.0 - p_one < alpha else 0


def cell_note(
    p_one: float,
    constant: float,
    reference: str,
    strategy: str,
    higher_is_better: bool,
    scale: float = 1.0,
    digits: int = 3,
) -> str:
    """A cell's test in words: the one-tailed p that ``reference`` is better and who is
    significantly better (either way, at :data:`ALPHA`), or why there is no test.

    >>> cell_note(0.9996, math.nan, "egl", "random", False)
    'p>0.999 (reverse test p<0.001): random better'
    >>> cell_note(0.01, math.nan, "egl", "random", False)
    'p=0.010: egl better'
    >>> cell_note(math.nan, 0.0, "egl", "random", False)
    'identical in every run'
    >>> cell_note(math.nan, -0.5, "egl", "random", True)
    'random better by 0.500 in every run: no t-test'
    """
    if not math.isnan(constant):
        if constant == 0.0:
            return "identical in every run"
        better = reference if (constant > 0) == higher_is_better else strategy
        return f"{better} better by {abs(constant) * scale:.{digits}f} in every run: no t-test"
    if math.isnan(p_one):
        return "p=— (fewer than two runs: no test)"
    text = p_text(p_one)
    way = direction(p_one)
    if way > 0:
        return f"{text}: {reference} better"
    if way < 0:
        reverse = format_p(1.0 - p_one)
        reverse = reverse if reverse[0] in "<>" else f"={reverse}"
        return f"{text} (reverse test p{reverse}): {strategy} better"
    return text


def pooled_se(hits: ArrayLike, counts: ArrayLike) -> float:
    """Standard error of a pooled proportion ``sum(hits) / sum(counts)`` (PCK: correct joints
    over annotated joints) whose examples (people, images) are independent but whose joints
    within an example are not: the ratio estimator's

    .. math:: \\mathrm{SE} = \\frac{\\sqrt{\\tfrac{n}{n-1}\\sum_i (h_i - p\\, m_i)^2}}{\\sum_i m_i},
        \\quad p = \\frac{\\sum_i h_i}{\\sum_i m_i},

    over the n examples with ``counts`` m_i > 0. With equal counts it is the standard error of
    the mean of the per-example fractions. NaN with fewer than two such examples.

    >>> round(pooled_se([1, 2, 3], [4, 4, 4]), 4)  # fractions .25 .5 .75: sd .25, / sqrt 3
    0.1443
    """
    h = np.asarray(hits, dtype=np.float64)
    m = np.asarray(counts, dtype=np.float64)
    keep = m > 0
    h, m = h[keep], m[keep]
    n = h.size
    if n < 2:
        return math.nan
    p = h.sum() / m.sum()
    return float(math.sqrt(n / (n - 1) * np.sum((h - p * m) ** 2)) / m.sum())
