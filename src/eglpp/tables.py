"""Table 1 of an experiment as text: Markdown (the terminal, ``table.md``) and CSV.

Each cell is ``mean ± std`` over runs with its test in words (:func:`note`: the one-tailed p that
the reference is better, who is significantly better either way, or why there is no test),
then what the table's tests mean together (:func:`holm_line`) and what the runs can detect
(:func:`power_lines`). The numbers come from :func:`eglpp.stats.summarize`.
"""

from __future__ import annotations

import csv
import io
import math

from eglpp.significance import ALPHA, cell_note
from eglpp.stats import DETECT_ALPHA, Summary

__all__ = ["note", "holm_line", "power_lines", "to_markdown", "to_csv"]


def _power_text(detectable: float, constant: float, scale: float, digits: int) -> str:
    """The detectable difference, or why there is none: with the same paired difference in every
    run the spread is 0 and "detects 0.000" would claim a precision the runs do not have."""
    if math.isnan(constant):
        return f"{detectable * scale:.{digits}f}"
    if constant == 0.0:
        return "none (identical in every run)"
    return f"none (the same difference, {abs(constant) * scale:.{digits}f}, in every run)"


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
        constant = summary.constant or {}
        final = _power_text(summary.detectable[s][-1], constant.get(s, [math.nan])[-1], scale,
                            digits)  # fmt: skip
        auc = _power_text(summary.auc_detectable[s], (summary.auc_constant or {}).get(s, math.nan),
                          scale, digits)  # fmt: skip
        lines.append(f"- {s}: {final} at n={summary.n_labelled[-1]}, {auc} in AUC")
    head = (
        f"Smallest difference from '{summary.reference}' that {summary.n_runs} runs detect at "
        f"p < {DETECT_ALPHA:g} (one-tailed; t·s/√n of the paired differences): smaller "
        "differences may be real but cannot show as significant."
    )
    return [head, *lines]


def note(summary: Summary, strategy: str, i: int | None, scale: float = 1.0, digits: int = 3):
    """The words of a cell's test (:func:`~eglpp.significance.cell_note`): at
    ``n_labelled[i]``, or the AUC where ``i`` is None; ``reference`` in the reference's row,
    with a ``†`` where the test stays significant after Holm's correction (:func:`holm_line`)."""
    if strategy == summary.reference:
        return "reference"
    if summary.reference is None:
        return "no reference: no test"
    pick = (lambda d: d[strategy]) if i is None else (lambda d: d[strategy][i])
    auc = i is None
    p = pick(summary.auc_pvalue if auc else summary.pvalue)
    const = (
        pick(summary.auc_constant if auc else summary.constant) if summary.constant else math.nan
    )
    text = cell_note(p, const, summary.reference, strategy, summary.higher_is_better, scale, digits)
    adjusted = pick(summary.auc_holm if auc else summary.holm) if summary.holm else math.nan
    return text + " †" if adjusted < ALPHA else text


def holm_line(summary: Summary) -> str:
    """What the table's many tests mean together: how many cells were tested and how many stay
    significant (either way) after Holm's correction, which the ``†`` marks; empty with fewer
    than two tests."""
    n = summary.n_tests()
    if n < 2:
        return ""
    cells = [*(v for s in summary.strategies for v in (summary.holm or {}).get(s, [])),
             *(summary.auc_holm or {}).values()]  # fmt: skip
    kept = sum(p < ALPHA for p in cells)
    return (
        f"{n} tests in this table: at p < {ALPHA:g} about {ALPHA * n:.1f} would be "
        f"significant by chance alone. †: still significant (either way) after Holm's "
        f"correction over all {n} (two-sided, familywise {ALPHA:g}): {kept} of them."
    )


def _rows(summary: Summary, scale: float, digits: int) -> tuple[list[str], list[list[str]]]:
    header = ["strategy"] + [str(n) for n in summary.n_labelled] + ["AUC"]
    rows = []
    for s in summary.strategies:
        cells = [s]
        for i in range(len(summary.n_labelled)):
            m, sd = summary.mean[s][i], summary.std[s][i]
            text = note(summary, s, i, scale, digits)
            cells.append(f"{m * scale:.{digits}f} ± {sd * scale:.{digits}f} ({text})")
        cells.append(
            f"{summary.auc_mean[s] * scale:.{digits}f} ± "
            f"{summary.auc_std[s] * scale:.{digits}f} ({note(summary, s, None, scale, digits)})"
        )
        rows.append(cells)
    return header, rows


def to_markdown(summary: Summary, scale: float = 1.0, digits: int = 3) -> str:
    """Table 1 as Markdown: one row per strategy, ``mean ± std (p=…: who is better)`` per number
    labelled, then what the table's tests mean together (:func:`holm_line`) and what the runs
    can detect (:func:`power_lines`)."""
    header, rows = _rows(summary, scale, digits)
    arrow = "higher is better" if summary.higher_is_better else "lower is better"
    ref = summary.reference or "none"
    lines = [
        f"{summary.metric} ({arrow}); mean ± std over {summary.n_runs} runs; p: one-tailed "
        f"paired t-test that '{ref}' is better (where the other strategy is better, the "
        "reverse test's p too)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    extra = [holm_line(summary)] if holm_line(summary) else []
    extra += power_lines(summary, scale, digits)
    if extra:
        lines += ["", *extra]
    return "\n".join(lines) + "\n"


def to_csv(summary: Summary) -> str:
    """Long-format CSV: strategy, n_labelled, mean, std, p_value, n_runs, detectable (the
    smallest difference from the reference the runs detect at p < DETECT_ALPHA); AUC rows use
    n_labelled=AUC."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["strategy", "n_labelled", "mean", "std", "p_value", "n_runs", "detectable",
                "p_holm_two_sided", "constant_difference"])  # fmt: skip
    nan, none = math.nan, [math.nan] * len(summary.n_labelled)
    for s in summary.strategies:
        det = (summary.detectable or {}).get(s, none)
        adj, const = (summary.holm or {}).get(s, none), (summary.constant or {}).get(s, none)
        for i, n in enumerate(summary.n_labelled):
            w.writerow([s, n, summary.mean[s][i], summary.std[s][i], summary.pvalue[s][i],
                        summary.n_runs, det[i], adj[i], const[i]])  # fmt: skip
        auc_det = (summary.auc_detectable or {}).get(s, nan)
        w.writerow([s, "AUC", summary.auc_mean[s], summary.auc_std[s], summary.auc_pvalue[s],
                    summary.n_runs, auc_det, (summary.auc_holm or {}).get(s, nan),
                    (summary.auc_constant or {}).get(s, nan)])  # fmt: skip
    return buf.getvalue()
