"""eglpp: active learning with Expected Gradient Length for regression (EGL) and pose (EGL++).

``eglpp.score(strategy, model, unlabelled, labelled, ...)`` and ``eglpp.select(...,
budget=...)`` score and select with any PyTorch model (:mod:`eglpp.scoring.api`).

References
----------
Shukla, M. "Bayesian Uncertainty and Expected Gradient Length - Regression: Two Sides of the
Same Coin?" WACV 2022.
"""

from eglpp.scoring.api import Scores, Selection, score, select
from eglpp.scoring.contract import ModelContract

__version__ = "0.1.0"
__all__ = ["__version__", "score", "select", "Scores", "Selection", "ModelContract"]
