import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from eglpp.io import StateFileError, atomic_save_npy, atomic_write_json, load_npy, read_json
from eglpp.selection import select_top
from eglpp.stats import area_under_curve, paired_pvalue, summarize
from eglpp.tables import to_csv, to_markdown


def _results(hib=True):
    return {
        "task": "t",
        "metric": "PCK@0.2",
        "higher_is_better": hib,
        "n_labelled": [10, 20, 30],
        "scores": {
            "egl++": [[0.5, 0.6, 0.7], [0.4, 0.65, 0.72], [0.45, 0.6, 0.8]],
            "random": [[0.5, 0.55, 0.6], [0.4, 0.5, 0.7], [0.45, 0.58, 0.71]],
        },
        "config": {},
    }


def test_paired_pvalue_is_one_tailed_ttest_rel():
    a, b = np.array([0.6, 0.65, 0.6]), np.array([0.55, 0.5, 0.58])
    full = sps.ttest_rel(a, b)
    # reference better and higher is better: one-tailed p is half the two-tailed p
    assert paired_pvalue(a, b, True) == pytest.approx(full.pvalue / 2)
    assert paired_pvalue(a, b, False) == pytest.approx(1 - full.pvalue / 2)
    assert math.isnan(paired_pvalue(a[:1], b[:1], True))
    # every pair differs by the same amount (up to rounding): the t-test is undefined
    c = np.array([0.1 + 0.2, 0.7, 0.25])
    assert math.isnan(paired_pvalue(c, c - 0.05, True))
    assert math.isnan(paired_pvalue(c, c, True))


def test_hand_worked_pvalue():
    # differences 1, 1.5, 0.5: mean 1, sd 0.5, t = 1/(0.5/sqrt 3) = 3.4641, df 2
    p = paired_pvalue(np.array([2.0, 3.0, 4.0]), np.array([1.0, 1.5, 3.5]), True)
    assert p == pytest.approx(sps.t.sf(2 * math.sqrt(3), 2))


def test_area_under_curve_trapezoid():
    assert area_under_curve(np.array([0, 10, 30]), np.array([1.0, 3.0, 3.0])) == pytest.approx(
        (10 * 2 + 20 * 3) / 30
    )


def test_summarize_and_tables():
    s = summarize(_results())
    assert s.reference == "egl++"
    assert s.mean["random"][1] == pytest.approx(np.mean([0.55, 0.5, 0.58]))
    assert s.std["random"][1] == pytest.approx(np.std([0.55, 0.5, 0.58], ddof=1))
    assert math.isnan(s.pvalue["egl++"][0])
    assert s.pvalue["random"][1] == pytest.approx(
        sps.ttest_rel([0.6, 0.65, 0.6], [0.55, 0.5, 0.58], alternative="greater").pvalue
    )
    md = to_markdown(s)
    assert "| egl++ |" in md and "p=" in md
    assert to_csv(s).splitlines()[0].startswith("strategy,n_labelled")


def test_summarize_rejects_bad_schema():
    r = _results()
    r["scores"]["random"][0] = [1.0]
    with pytest.raises(ValueError, match=r"scores\['random'\]\[0\]"):
        summarize(r)
    r = _results()
    del r["metric"]
    with pytest.raises(ValueError, match="metric"):
        summarize(r)


def test_select_top_ties_follow_generator():
    scores = np.array([1.0, 3.0, 3.0, 3.0, 0.0])
    a = select_top(scores, 2, np.random.default_rng(5))
    b = select_top(scores, 2, np.random.default_rng(5))
    assert a.tolist() == b.tolist() and set(a) <= {1, 2, 3}
    picks = {tuple(select_top(scores, 1, np.random.default_rng(s))) for s in range(30)}
    assert len(picks) == 3  # ties are really broken at random
    with pytest.raises(ValueError, match="larger than the unlabelled pool"):
        select_top(scores, 6, np.random.default_rng(0))
    with pytest.raises(ValueError, match="NaN"):
        select_top(np.array([np.nan, 1.0]), 1, np.random.default_rng(0))


def test_atomic_io_roundtrip_and_corruption(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": np.int64(3)})
    assert read_json(tmp_path / "a.json") == {"x": 3}
    # strict JSON: NaN and infinities (which json.dumps would write as NaN/Infinity) become null
    atomic_write_json(tmp_path / "n.json", {"p": [np.nan, 0.5], "q": np.float32("inf")})
    assert json.loads((tmp_path / "n.json").read_text()) == {"p": [None, 0.5], "q": None}
    assert "NaN" not in (tmp_path / "n.json").read_text()
    atomic_save_npy(tmp_path / "a.npy", np.arange(4))
    assert load_npy(tmp_path / "a.npy").tolist() == [0, 1, 2, 3]
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(StateFileError, match="b.json"):
        read_json(tmp_path / "b.json")
    (tmp_path / "b.npy").write_bytes(b"garbage")
    with pytest.raises(StateFileError, match="b.npy"):
        load_npy(tmp_path / "b.npy")
    assert not list(tmp_path.glob(".*.tmp"))
    assert (tmp_path / "a.json").stat().st_mode & 0o044  # readable by others, like open()


def test_rank_agreement_hand_worked():
    from eglpp.stats import rank_agreement

    ref = np.arange(20.0)
    assert rank_agreement(ref, -ref) == {
        "n": 20, "spearman": -1.0, "top": 2, "top_overlap": 0.0, "passes": False
    }  # fmt: skip
    swapped = ref.copy()
    swapped[[18, 17]] = swapped[[17, 18]]  # the 2nd and 3rd swap: top 2 = {19, 17} vs {19, 18}
    got = rank_agreement(ref, swapped)
    assert got["top_overlap"] == 0.5 and not got["passes"]
    assert got["spearman"] == pytest.approx(1 - 6 * 2 / (20 * (20**2 - 1)))
    assert np.isnan(rank_agreement([1.0, 2.0], [2.0, 1.0])["spearman"])
    with pytest.raises(ValueError, match="two"):
        rank_agreement([1.0, 2.0], [1.0])


def test_detectable_difference_is_where_scipys_paired_test_reaches_alpha():
    from eglpp.stats import DETECT_ALPHA, detectable_difference

    rng = np.random.default_rng(5)
    for n in (3, 5, 10):
        noise = rng.normal(size=n)
        noise -= noise.mean()
        d = detectable_difference(noise)
        shifted = noise + d  # same spread, mean difference exactly d_min
        p = sps.ttest_1samp(shifted, 0.0, alternative="greater").pvalue
        assert p == pytest.approx(DETECT_ALPHA, rel=1e-9)
        bigger = sps.ttest_1samp(noise + 1.01 * d, 0.0, alternative="greater").pvalue
        assert bigger < DETECT_ALPHA
    assert np.isnan(detectable_difference(np.array([1.0])))


def test_table_states_the_detectable_difference():
    results = {
        "task": "t", "metric": "m", "higher_is_better": True, "n_labelled": [1, 2],
        "scores": {"egl": [[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]], "random": [[0.0, 0.0]] * 3},
        "config": {},
    }  # fmt: skip
    summary = summarize(results, "egl")
    d = summary.detectable["random"][-1]
    assert d == pytest.approx(sps.t.ppf(0.9, 2) * 1.0 / np.sqrt(3))
    text = to_markdown(summary)
    assert f"random: {d:.3f} at n=2" in text and "p < 0.1" in text


def test_select_top_refuses_infinite_scores():
    rng = np.random.default_rng(0)
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ValueError, match=r"scores contain \d NaN and \d infinite values"):
            select_top(np.array([0.5, bad, 0.1]), 1, rng)


def test_holm_matches_statsmodels_and_leaves_untested_cells_out():
    from statsmodels.stats.multitest import multipletests

    from eglpp.significance import holm

    rng = np.random.default_rng(3)
    for m in (1, 2, 7, 33):
        p = rng.uniform(0, 0.2, size=m) ** 2
        expected = multipletests(p, alpha=0.05, method="holm")[1]
        np.testing.assert_allclose(holm(p), expected, rtol=1e-12)
    with_nan = np.array([0.01, np.nan, 0.04, 0.03])
    got = holm(with_nan)
    assert np.isnan(got[1])
    finite = multipletests(with_nan[[0, 2, 3]], method="holm")[1]
    np.testing.assert_allclose(got[[0, 2, 3]], finite, rtol=1e-12)


def test_two_sided_from_one_tailed_is_scipys_two_sided_paired_test():
    from eglpp.significance import two_sided

    rng = np.random.default_rng(4)
    for _ in range(5):
        a, b = rng.normal(size=6), rng.normal(size=6)
        one = paired_pvalue(a, b, True)
        assert two_sided(one) == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)
        assert two_sided(paired_pvalue(a, b, False)) == pytest.approx(two_sided(one), rel=1e-12)


def _table(scores, hib=True):
    n = len(next(iter(scores.values()))[0])
    results = {"task": "t", "metric": "m", "higher_is_better": hib,
               "n_labelled": list(range(1, n + 1)), "scores": scores, "config": {}}  # fmt: skip
    return summarize(results, "egl")


def test_identical_runs_say_so_instead_of_a_missing_p_and_a_zero_detectable_difference():
    """Issue 21 item 4: every paired difference equal: no t-test, and the table says why."""
    egl = [[0.5, 0.6], [0.4, 0.7], [0.45, 0.65]]
    shifted = [[0.5, 0.5], [0.4, 0.6], [0.45, 0.55]]  # at n=2: 0.1 worse in every run
    summary = _table({"egl": egl, "coreset": egl, "random": shifted})
    assert summary.constant["coreset"] == [0.0, 0.0]
    assert summary.constant["random"][1] == pytest.approx(0.1)
    text = to_markdown(summary)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if "|" in line}
    assert "identical in every run" in rows["coreset"] and "p=—" not in rows["coreset"]
    assert "egl better by 0.100 in every run: no t-test" in rows["random"]
    assert "(reference)" in rows["egl"]
    assert "- coreset: none (identical in every run) at n=2" in text
    assert "0.000 at n=2" not in text
    assert "none (the same difference, 0.100, in every run) at n=2" in text


def test_a_strategy_better_than_the_reference_is_named_with_the_reverse_test():
    """Issue 21 item 5: p=0.999 alone hid that random beats the reference (RMSE, lower wins)."""
    egl = [[6.8, 6.9], [6.7, 6.8], [6.9, 7.0], [6.6, 6.85]]
    random = [[5.5, 5.4], [5.6, 5.5], [5.4, 5.45], [5.5, 5.6]]
    summary = _table({"egl": egl, "random": random}, hib=False)
    p = summary.pvalue["random"][1]
    reverse = sps.ttest_rel(np.array(egl)[:, 1], np.array(random)[:, 1], alternative="greater")
    assert p > 0.999 and reverse.pvalue < 0.001
    text = to_markdown(summary)
    assert "p>0.999 (reverse test p<0.001): random better †" in text
    assert "3 tests in this table" in text and "Holm's correction over all 3" in text


def test_holm_marks_only_the_cells_that_survive_the_correction():
    """A raw p < 0.05 among many tests is not marked; Holm's adjusted p decides the †."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(11)
    egl = rng.normal(size=(5, 8)).tolist()
    other = (np.array(egl) + rng.normal(size=(5, 8))).tolist()
    summary = _table({"egl": egl, "random": other})
    raw = np.array(summary.pvalue["random"] + [summary.auc_pvalue["random"]])
    two = 2 * np.minimum(raw, 1 - raw)
    expected = multipletests(two, method="holm")[1]
    got = np.array(summary.holm["random"] + [summary.auc_holm["random"]])
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    text = to_markdown(summary)
    assert text.count("†") - 1 == int((expected < 0.05).sum())  # one † in the legend line
