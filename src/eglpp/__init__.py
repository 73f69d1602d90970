"""eglpp: active learning with Expected Gradient Length for regression (EGL) and pose (EGL++).

``eglpp.score(strategy, model, unlabelled, labelled, ...)`` and ``eglpp.select(...,
budget=...)`` score and select with any PyTorch model (:mod:`eglpp.scoring.api`).

References
----------
Shukla, M. "Bayesian Uncertainty and Expected Gradient Length - Regression: Two Sides of the
Same Coin?" WACV 2022.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eglpp.scoring.api import Scores, Selection, score, select
    from eglpp.scoring.contract import ModelContract

__version__ = "0.1.0"
__all__ = ["__version__", "score", "select", "Scores", "Selection", "ModelContract"]

#: The public API, imported on first use (PEP 562): ``import eglpp`` must not load torch, since
#: the ``eglpp`` command (``eglpp.console``) sets torch's thread environment before torch loads.
_LAZY = {
    "score": "eglpp.scoring.api",
    "select": "eglpp.scoring.api",
    "Scores": "eglpp.scoring.api",
    "Selection": "eglpp.scoring.api",
    "ModelContract": "eglpp.scoring.contract",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'eglpp' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
