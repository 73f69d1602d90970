"""From a model to what a strategy scores: the pool inputs, their settings, the approx check.

- :mod:`~eglpp.scoring.contract`: ``ModelContract``, any ``nn.Module``'s prediction, embedding,
  loss and features (eglpp's hourglass is ``hourglass_contract``);
- :mod:`~eglpp.scoring.api`: ``eglpp.score`` / ``eglpp.select``, one call per strategy;
- :mod:`~eglpp.scoring.forward`, :mod:`~eglpp.scoring.labels`: a contract's pass over a data set
  and the labelled set's embeddings and labels (``LabelledCache``);
- :mod:`~eglpp.scoring.settings`: ``ScoringConfig``, shared by ``eglpp run`` and ``eglpp select``;
- :mod:`~eglpp.scoring.pool_inputs`: ``pool_inputs`` (embeddings, heatmaps, predicted losses,
  gradient-norm callables) for any contract, with the labelled set's cache;
- :mod:`~eglpp.scoring.approx_check`: exact EGL++ on a sample beside the approximate scores.
"""
