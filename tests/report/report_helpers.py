"""Helpers of the report tests: fabricated results and the check of a table against them."""

import math
import re

import numpy as np

from eglpp.stats import summarize

__all__ = ["fabricated_results", "check_table1"]


def fabricated_results(metric: str, seed: int, higher_is_better: bool = False) -> dict:
    """A results.json of 4 runs × 3 strategies with values spread over several magnitudes."""
    rng = np.random.default_rng(seed)
    n_labelled = [20, 30, 40, 50]
    scores = {
        s: (base * (1 + 0.1 * rng.standard_normal((4, len(n_labelled))))).tolist()
        for s, base in (("egl", 12.5), ("random", 14.0), ("emcm", 13.1))
    }
    return {
        "task": "diabetes",
        "metric": metric,
        "higher_is_better": higher_is_better,
        "n_labelled": n_labelled,
        "scores": scores,
        "config": {"runs": 4, "cycles": 3, "budget": 10, "family": "linear", "seed": seed},
    }


def _close(text: str, value: float, what: str) -> None:
    """``text`` shows ``value`` to its displayed rounding (``"—"`` shows NaN)."""
    text = text.strip().removeprefix("p").removeprefix("=")
    if text == "—":
        assert math.isnan(value), f"{what}: shown as — but is {value}"
        return
    if text.startswith("<"):
        assert value < float(text[1:]), f"{what}: shown as {text} but is {value}"
        return
    assert re.fullmatch(r"-?\d+(\.\d+)?", text), f"{what}: not a number: {text!r}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    tol = 0.5 * 10.0**-decimals + 1e-9
    assert abs(float(text) - value) <= tol, f"{what}: shown {text}, results.json gives {value}"


def check_table1(cells: list[dict], results: dict, scale: float) -> int:
    """Compare parsed Table 1 cells with :func:`eglpp.stats.summarize` of ``results``.

    ``cells``: one dict per cell with keys strategy, n, mean, std, p (the displayed texts).
    Returns how many cells were checked; every (strategy, point) must be present once.
    """
    reference = results["config"].get("reference")
    s = summarize(results, reference if reference in results["scores"] else None)
    seen = set()
    for c in cells:
        st, n = c["strategy"], c["n"]
        if n == "AUC":
            m, sd, p = s.auc_mean[st], s.auc_std[st], s.auc_pvalue[st]
        else:
            i = s.n_labelled.index(int(n))
            m, sd, p = s.mean[st][i], s.std[st][i], s.pvalue[st][i]
        where = f"{st} at {n}"
        _close(c["mean"], m * scale, f"mean of {where}")
        _close(c["std"], sd * scale, f"std of {where}")
        _close(c["p"], p, f"p-value of {where}")
        assert (st, n) not in seen, f"{where} shown twice"
        seen.add((st, n))
    expected = {(st, str(n)) for st in s.strategies for n in s.n_labelled + ["AUC"]}
    assert seen == expected, f"missing cells: {sorted(expected - seen)}"
    # the raw values, independently of summarize: the mean over runs
    for st, runs in results["scores"].items():
        assert np.allclose(np.mean(runs, axis=0), s.mean[st])
    return len(seen)
