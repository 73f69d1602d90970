"""From a model to what a strategy scores: the pool inputs, their settings, the approx check.

- :mod:`~eglpp.scoring.settings`: ``ScoringConfig``, shared by ``eglpp run`` and ``eglpp select``;
- :mod:`~eglpp.scoring.pool_inputs`: ``pool_inputs`` (embeddings, heatmaps, predicted losses,
  gradient-norm callables) for the hourglass, with the labelled set's cache;
- :mod:`~eglpp.scoring.approx_check`: exact EGL++ on a sample beside the approximate scores.
"""
