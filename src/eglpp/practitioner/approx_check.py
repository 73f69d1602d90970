"""How well EGL++'s approximate scores rank a practitioner's own pool: exact on a sample.

``eglpp select --estimator approx --check-approx N`` scores N randomly chosen usable candidates
again with the exact estimator (same model, labelled set, neighbours and p(j|i): each image's
EGL++ score depends on that image and the labelled set only) and compares the two rankings on
them: Spearman's rank correlation and the overlap of their top 10 %. It costs about N exact
scores and measures the approximation where it is used, instead of assuming that a figure
measured elsewhere (``benchmarks/egl_speed.py``) carries over.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from eglpp.stats import rank_agreement

__all__ = ["check_approx"]


def check_approx(strategy, model, aux, skeleton, scored, config) -> dict:
    """Exact EGL++ on ``config.check_approx`` sampled candidates of ``scored`` against their
    approximate scores: :func:`eglpp.stats.rank_agreement` plus ``"positions"`` (in
    ``scored``'s rows; sampled from ``config.seed``)."""
    from eglpp.pose.scoring import pool_inputs_and_predictions

    n = min(config.check_approx, len(scored.scores))
    if n < 3:
        raise ValueError(f"--check-approx {config.check_approx}: needs at least 3 candidates")
    rng = np.random.default_rng([config.seed, 0xC4EC])
    positions = np.sort(rng.choice(len(scored.scores), size=n, replace=False))
    exact = dataclasses.replace(strategy, estimator="exact")
    sample = scored.pool.subset(positions).dataset(skeleton, config.input_size, config.box_scale)
    inputs, _ = pool_inputs_and_predictions(
        exact.needs,
        model,
        aux,
        sample,
        scored.labelled_set,
        batch_size=config.batch_size,
        device=config.device,
        sigma=config.sigma,
        gradnorm=config.gradnorm,
        cache=scored.labelled_cache,
        always_predict=False,
    )
    truth = np.asarray(exact.score(inputs, np.random.default_rng(config.seed)), np.float64)
    approx = np.asarray(scored.scores, np.float64)[positions]
    return {**rank_agreement(truth, approx), "positions": positions.tolist()}
