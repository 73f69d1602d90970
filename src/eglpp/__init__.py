"""eglpp: active learning with Expected Gradient Length for regression (EGL) and pose (EGL++).

References
----------
Shukla, M. "Bayesian Uncertainty and Expected Gradient Length - Regression: Two Sides of the
Same Coin?" WACV 2022.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
