"""EGL for regression: closed-form scores on Gaussian bootstrap ensembles, and the experiment.

- :mod:`~eglpp.regression.strategies`: ``egl`` (Eq. 7/10), ``emcm`` (Eq. 2),
  ``predictive_variance`` (Eq. 11), ``random_scores``, ``pool_density``;
- :mod:`~eglpp.regression.ensembles` / :mod:`~eglpp.regression.mlp`: linear, GP and
  heteroscedastic-network members (``fit_ensemble`` → ``.predict(x)`` → ``Predictive``);
- :mod:`~eglpp.regression.batch`: ``conditioned_batch`` (the ``-diverse`` batch mode);
- :mod:`~eglpp.regression.registry`: strategies by name (``make_strategy``, ``strategy_names``);
- :mod:`~eglpp.regression.skactiveml_adapter`: scikit-activeml's regression strategies;
- :mod:`~eglpp.regression.datasets`: built-in real data sets and user CSVs;
- :mod:`~eglpp.regression.experiment`: ``run_experiment`` (what ``eglpp regression`` runs).
"""

from eglpp.regression.batch import conditioned_batch
from eglpp.regression.ensembles import EnsembleConfig, Predictive, fit_ensemble
from eglpp.regression.strategies import egl, emcm, predictive_variance, random_scores

__all__ = [
    "EnsembleConfig",
    "Predictive",
    "fit_ensemble",
    "egl",
    "emcm",
    "predictive_variance",
    "random_scores",
    "conditioned_batch",
]
