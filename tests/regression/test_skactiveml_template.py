"""scikit-activeml's query-strategy template, checked for EGL and predictive variance.

What ``skactiveml/tests/template_query_strategy.py`` checks for every pool strategy, written
again for pytest: each init and query parameter's valid and invalid values with the exceptions
scikit-activeml raises, the regressor left untouched, ``candidates`` as None / indices / samples
giving the same utilities, batch sizes and utility shapes, reproducibility under
``random_state``, AL cycles from zero labels, and labelled rows never queried. Every case runs
for both strategies, with the top-``batch_size`` and the ``diverse`` batch.
"""

from __future__ import annotations

import inspect
import pickle
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from skactiveml.regressor import NICKernelRegressor, SklearnNormalRegressor, SklearnRegressor
from skactiveml.utils import MISSING_LABEL, is_labeled, unlabeled_indices
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVR

from eglpp.regression.skactiveml import ExpectedGradientLength, PredictiveVariance


class Dummy:
    pass


@dataclass
class Case:
    cls: type
    diverse: bool

    @property
    def id(self) -> str:
        return f"{self.cls.__name__}{'-diverse' if self.diverse else ''}"

    def init(self, **changes):
        params = {"random_state": 42, "missing_label": MISSING_LABEL, "diverse": self.diverse}
        params.update(changes)
        return self.cls(**params)

    def query_params(self, **changes):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(14, 2))
        y = X @ np.array([1.0, -2.0]) + 0.3 * rng.normal(size=14)
        y[6:] = MISSING_LABEL
        params = {"X": X, "y": y, "reg": SklearnRegressor(Ridge(alpha=1e-3))}
        if "fit_reg" in inspect.signature(self.cls.query).parameters:
            params["fit_reg"] = True
        params.update(changes)
        return params

    def check(self, err, init=None, **query_changes):
        """Query with one init or query parameter changed; ``err`` None means it must work."""
        qs = self.init(**(init or {}))
        params = self.query_params(**query_changes)
        if err is None:
            return qs.query(**params)
        with pytest.raises(err):
            qs.query(**params)


CASES = [Case(c, d) for c in (ExpectedGradientLength, PredictiveVariance) for d in (False, True)]


@pytest.fixture(params=CASES, ids=lambda c: c.id)
def case(request) -> Case:
    return request.param


def _utilities(case: Case, qs=None, **changes):
    qs = case.init() if qs is None else qs
    return qs.query(**case.query_params(return_utilities=True, **changes))


# ----- init parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("value, err", [(np.nan, ValueError), ("state", ValueError), (1, None)])
def test_init_param_random_state(case, value, err):
    case.check(err, init={"random_state": value})


@pytest.mark.parametrize("value, err", [(MISSING_LABEL, None), (Dummy, TypeError)])
def test_init_param_missing_label(case, value, err):
    case.check(err, init={"missing_label": value})


@pytest.mark.parametrize(
    "value, err",
    [
        (1, None),
        (3, None),
        (-1, ValueError),
        (0, ValueError),
        ("five", TypeError),
        (2.0, TypeError),
    ],
)
def test_init_param_bootstrap_size(case, value, err):
    case.check(err, init={"bootstrap_size": value})


@pytest.mark.parametrize(
    "value, err",
    [
        (1, None),
        (20, None),  # a count may exceed the labelled rows: drawn with replacement
        (0.5, None),
        (1.0, None),
        (0, ValueError),
        (0.0, ValueError),
        (1.5, ValueError),
        ("illegal", TypeError),
        (True, TypeError),
    ],
)
def test_init_param_n_train(case, value, err):
    case.check(err, init={"n_train": value})


@pytest.mark.parametrize(
    "value, err",
    [
        (None, None),
        (lambda x: np.zeros((len(x), 1)), None),
        ("illegal", TypeError),
        (1, TypeError),
        (lambda x: np.zeros(len(x)), ValueError),  # 1-D: not (n_candidates, n_params)
        (lambda x: np.zeros((1, 3)), ValueError),
    ],
)
def test_init_param_feature_map(value, err):
    Case(ExpectedGradientLength, False).check(err, init={"feature_map": value})


@pytest.mark.parametrize(
    "value, err", [(True, None), (False, None), ("yes", TypeError), (1, TypeError)]
)
def test_init_param_diverse(case, value, err):
    case.check(err, init={"diverse": value})


def test_init_param_test_assignments(case):
    """Every init parameter is stored as given (scikit-learn's get_params / clone rely on it)."""
    for name in inspect.signature(case.cls.__init__).parameters:
        if name != "self":
            marker = Dummy()
            assert getattr(case.init(**{name: marker}), name) is marker
    assert set(case.init().get_params()) == set(inspect.signature(case.cls.__init__).parameters) - {
        "self"
    }


def test_param_test_availability():
    """Every init and query parameter of both classes has a test here."""
    here = globals()
    for cls in (ExpectedGradientLength, PredictiveVariance):
        for kind, func in (("init", cls.__init__), ("query", cls.query)):
            for name in inspect.signature(func).parameters:
                if name != "self":
                    assert f"test_{kind}_param_{name}" in here, f"{cls.__name__}.{kind}: {name}"


# ----- query parameters -----------------------------------------------------------------------


def test_query_param_X(case):
    X = case.query_params()["X"]
    case.check((ValueError, TypeError), X="string")
    case.check((ValueError, TypeError), X=Dummy)
    case.check(None, X=X)
    case.check(ValueError, X=np.vstack([X, X]))


def test_query_param_y(case):
    y = case.query_params()["y"]
    case.check(TypeError, y=np.nan)
    case.check(TypeError, y=Dummy)
    case.check(None, y=y)
    case.check(ValueError, y=np.vstack([y, y]))
    case.check(TypeError, y=np.full(len(y), "test"))


@pytest.mark.parametrize(
    "reg, err",
    [
        (SklearnRegressor(Ridge(alpha=1e-3)), None),
        (SklearnRegressor(LinearRegression()), None),
        (SklearnRegressor(GaussianProcessRegressor(optimizer=None)), None),
        (SklearnNormalRegressor(GaussianProcessRegressor(optimizer=None)), None),
        (NICKernelRegressor(), None),
        (GaussianProcessRegressor(), TypeError),  # scikit-learn's, not wrapped
        (SklearnRegressor(SVR()), TypeError),  # no Gaussian predictive for its members
        (SklearnRegressor(Ridge(), missing_label=-1.0), ValueError),  # other missing_label
        (np.nan, TypeError),
        ("state", TypeError),
        (Dummy(), TypeError),
        (GaussianNB(), TypeError),
    ],
    ids=lambda v: type(v).__name__,
)
def test_query_param_reg(case, reg, err):
    case.check(err, reg=reg)


def test_query_leaves_reg_unchanged(case):
    """The regressor passed in is never fitted or modified (clones are)."""
    fitted = SklearnRegressor(Ridge(alpha=1e-3))
    params = case.query_params()
    fitted.fit(params["X"], params["y"])
    for reg, fit_reg in ((SklearnRegressor(Ridge(alpha=1e-3)), True), (fitted, False)):
        before = pickle.dumps(reg)
        extra = {"fit_reg": fit_reg} if "fit_reg" in params else {}
        case.init().query(**case.query_params(reg=reg, **extra))
        assert pickle.dumps(reg) == before


def test_query_param_fit_reg():
    case = Case(ExpectedGradientLength, False)
    case.check(TypeError, fit_reg=np.nan)
    case.check(TypeError, fit_reg="state")
    params = case.query_params()
    fitted = SklearnRegressor(Ridge(alpha=1e-3)).fit(params["X"], params["y"])
    _, u_fit = _utilities(case)
    _, u_given = _utilities(case, reg=fitted, fit_reg=False)
    np.testing.assert_allclose(u_fit, u_given, rtol=1e-12)  # f is the same model either way


def test_query_param_sample_weight(case):
    n = len(case.query_params()["y"])
    case.check((ValueError, TypeError), sample_weight=np.nan)
    case.check((ValueError, TypeError), sample_weight=Dummy)
    case.check(None, sample_weight=None)
    case.check(ValueError, sample_weight=np.ones(n + 1))
    _, u_none = _utilities(case)
    _, u_ones = _utilities(case, sample_weight=np.ones(n))
    np.testing.assert_allclose(u_none, u_ones, rtol=1e-9)  # unit weights change nothing
    _, u_other = _utilities(case, sample_weight=np.linspace(0.5, 2.0, n))
    assert not np.allclose(u_none, u_other, equal_nan=True)  # and weights are used


GAUSSIAN_REGRESSORS = [
    SklearnRegressor(Ridge(alpha=1e-3)),  # its fit takes weights
    NICKernelRegressor(),  # takes weights
    SklearnRegressor(GaussianProcessRegressor()),  # takes none
    SklearnNormalRegressor(GaussianProcessRegressor()),  # takes none
]


@pytest.mark.parametrize("reg", GAUSSIAN_REGRESSORS, ids=lambda r: repr(r)[:40])
def test_query_param_sample_weight_for_every_regressor(case, reg):
    """The template's sample_weight cases (unit weights work) for each Gaussian regressor, with
    ``fit_reg`` True and False: weights reach every fit that takes them (the same utilities as
    f fitted by hand with them); a regressor that takes none accepts unit weights (the same
    utilities as none) and refuses others in one line naming it."""
    params = case.query_params(reg=reg)
    n = len(params["y"])
    _, u_none = _utilities(case, reg=reg)
    _, u_ones = _utilities(case, reg=reg, sample_weight=np.ones(n))
    np.testing.assert_allclose(u_none, u_ones, rtol=1e-9)
    w = np.linspace(0.5, 2.0, n)
    if "sample_weight" not in inspect.signature(reg.fit).parameters:
        with pytest.raises(ValueError, match=r"^`sample_weight`: `reg` \(.*\) is fitted without "
                           r"weights \(its fit takes no sample_weight\)"):  # fmt: skip
            case.init().query(**case.query_params(reg=reg, sample_weight=w))
        return
    _, u_w = _utilities(case, reg=reg, sample_weight=w)
    assert not np.allclose(u_none, u_w, equal_nan=True)  # the weights are used
    if "fit_reg" in params:  # f fitted here with the weights = f fitted by hand with them
        fitted = clone(reg).fit(params["X"], params["y"], sample_weight=w)
        _, u_given = _utilities(case, reg=fitted, fit_reg=False, sample_weight=w)
        np.testing.assert_allclose(u_w, u_given, rtol=1e-9)


def test_query_param_candidates(case):
    first = unlabeled_indices(case.query_params()["y"])[0]
    case.check(ValueError, candidates=np.nan)
    case.check(TypeError, candidates=Dummy)
    case.check(None, candidates=[first])


@pytest.mark.parametrize("value, err", [(0, ValueError), (1.2, TypeError), (1, None), (3, None)])
def test_query_param_batch_size(case, value, err):
    case.check(err, batch_size=value)


@pytest.mark.parametrize(
    "value, err", [("string", TypeError), (Dummy, TypeError), (True, None), (False, None)]
)
def test_query_param_return_utilities(case, value, err):
    case.check(err, return_utilities=value)


# ----- behaviour ------------------------------------------------------------------------------


def test_query_reproducibility(case):
    qs = case.init(random_state=np.random.RandomState(0))
    id1, u1 = _utilities(case, qs, batch_size=3)
    id2, u2 = _utilities(case, qs, batch_size=3)
    assert u1.shape == (3, len(case.query_params()["X"]))
    np.testing.assert_array_equal(id1, id2)
    np.testing.assert_allclose(u1, u2)
    _, u_int1 = _utilities(case, case.init(random_state=7))
    _, u_int2 = _utilities(case, case.init(random_state=7))
    _, u_other = _utilities(case, case.init(random_state=8))
    np.testing.assert_array_equal(u_int1, u_int2)
    assert not np.allclose(u_int1, u_other, equal_nan=True)  # the seed draws the bootstraps


def test_query_al_cycles(case):
    """A few AL cycles from 0, 1 and n-1 labels (the template's test_query_al_cycles)."""
    params = case.query_params()
    y_true = params["y"].copy()
    unl = ~is_labeled(y_true)
    y_true[unl] = y_true[~unl][0]
    qs = case.init()
    for n_initial in (0, 1, int(unl.sum()) - 1):
        y = np.full(len(y_true), MISSING_LABEL)
        y[:n_initial] = y_true[:n_initial]
        with warnings.catch_warnings():  # no labels: scikit-activeml warns its regressors fell back
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(2):
                query = qs.query(**{**params, "y": y})
                assert not is_labeled(y[query]).any()
                y[query] = y_true[query]


def test_query_batch_variation(case):
    params = case.query_params()
    n_unlabelled = int((~is_labeled(params["y"])).sum())
    n_labelled = len(params["y"]) - n_unlabelled
    ids, utils = _utilities(case, batch_size=5)
    assert len(ids) == 5 and utils.shape == (5, len(params["X"]))
    assert np.isnan(utils[0]).sum() == n_labelled
    for b in range(5):  # step b: NaN at the labelled rows and at the b rows picked before it
        assert np.isnan(utils[b]).sum() == n_labelled + b
        assert np.isnan(utils[b, ids[:b]]).all()
        assert ids[b] == np.nanargmax(utils[b])
    with pytest.warns(Warning):
        case.init().query(**case.query_params(batch_size=n_unlabelled + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids, _ = _utilities(case, batch_size=n_unlabelled + 1)
    assert len(ids) == n_unlabelled and len(set(ids)) == n_unlabelled


@pytest.mark.parametrize("case", [c for c in CASES if not c.diverse], ids=lambda c: c.id)
def test_top_batch_is_one_utility_vector(case):
    """Without ``diverse`` every step's utilities are the first step's, minus earlier picks."""
    ids, utils = _utilities(case, batch_size=4)
    for b in range(1, 4):
        expected = utils[0].copy()
        expected[ids[:b]] = np.nan
        np.testing.assert_array_equal(utils[b], expected)


def test_query_candidate_variation(case):
    """None, the unlabelled indices and the unlabelled samples give the same utilities."""
    y = case.query_params()["y"]
    unl = unlabeled_indices(y)
    ids1, u1 = _utilities(case, batch_size=3)
    ids2, u2 = _utilities(case, batch_size=3, candidates=unl)
    np.testing.assert_allclose(u1, u2)
    np.testing.assert_array_equal(ids1, ids2)
    _, u3 = _utilities(case, candidates=unl[:1])
    assert np.isnan(np.delete(u3[0], unl[0])).all()
    np.testing.assert_allclose(u3[0, unl[0]], u1[0, unl[0]])  # a batch's first step is the score
    ids4, u4 = _utilities(case, batch_size=3, candidates=case.query_params()["X"][unl])
    assert u4.shape == (3, len(unl))
    np.testing.assert_allclose(u1[:, unl], u4)
    np.testing.assert_array_equal(unl[ids4], ids1)  # indices into the candidates


@pytest.mark.parametrize("batch_size", [1, 4])
def test_labelled_rows_never_queried(case, batch_size):
    params = case.query_params()
    labelled = np.flatnonzero(is_labeled(params["y"]))
    for seed in range(5):
        ids, utils = _utilities(case, case.init(random_state=seed), batch_size=batch_size)
        assert not np.isin(ids, labelled).any()
        assert np.isnan(utils[:, labelled]).all()
        assert len(set(ids)) == batch_size
